"""The preprocessing a checkpoint was trained with: view sizes, tokenizer, token length and description
source, from its store's manifest when that store is the very one it was trained on, else its config."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from emotic_mm.data.images import BODY_SIZE, CONTEXT_SIZE
from emotic_mm.data.store import read_manifest, store_fingerprint
from emotic_mm.data.text import SOURCE_CAPTIONER, SOURCE_TEMPLATE
from emotic_mm.data.tokens import DEFAULT_MAX_LENGTH
from emotic_mm.errors import DataFormatError
from emotic_mm.models.multimodal import IMAGE_MODALITIES


@dataclass
class Preprocessing:
    """What ``prepare`` did for the store the checkpoint was trained on."""

    modalities: list[str]
    context_size: int
    body_size: int
    tokenizer: str
    max_length: int
    text_source: str  # where the store's descriptions came from: file, template, captioner
    text_cfg: Any  # prepare's text config (the captioner's model and view, for instance)
    origin: str  # where these settings were read

    @property
    def needs_image(self) -> bool:
        return any(m in IMAGE_MODALITIES for m in self.modalities)

    @property
    def fallback_source(self) -> str:
        """What describes a person without text: a new photo has no entry in a description file, and
        ``prepare`` describes such persons by the template; a captioner is simply run again."""
        return SOURCE_CAPTIONER if self.text_source == SOURCE_CAPTIONER else SOURCE_TEMPLATE

    @property
    def fallback_note(self) -> str:
        if self.text_source == SOURCE_CAPTIONER:
            return f"captioned by {self.text_cfg.get('model')}, as the checkpoint's training store was"
        if self.text_source == SOURCE_TEMPLATE:
            return "described by the template (no gender/age known), as the checkpoint's training store was"
        return (
            f"described by the template (no gender/age known): the checkpoint was trained on "
            f"{self.text_source!r} descriptions, and prepare uses the template for persons a description "
            f"file lacks"
        )


def trained_manifest(store: Any, store_id: str | None) -> dict[str, Any] | None:
    """The manifest of the store a checkpoint names, only when it is the very store the checkpoint was
    trained on (its fingerprint is the checkpoint's ``meta.json`` ``store``): a path in a shared
    checkpoint never makes predict take settings from some other file."""
    if not store or not store_id:
        return None
    try:
        manifest = read_manifest(Path(str(store)))
        same = manifest is not None and store_fingerprint(Path(str(store)) / "manifest.json") == store_id
    except (DataFormatError, OSError, ValueError):
        return None
    return manifest if same else None


def trained_preprocessing(
    model_cfg: DictConfig, max_length: int | None = None, store_id: str | None = None
) -> Preprocessing:
    """Settings from the store's ``manifest.json`` when the checkpoint's ``data.prepared_dir`` holds the
    store it was trained on (``store_id``; it records what prepare really did), else from its config."""
    data = model_cfg.get("data") or {}
    store = data.get("prepared_dir")
    manifest = trained_manifest(store, store_id)
    text_cfg = model_cfg.get("text") or OmegaConf.create({"source": SOURCE_TEMPLATE})
    if manifest is not None:
        sizes = manifest.get("sizes", {})
        context, body = (
            sizes.get("context", data.get("context_size", CONTEXT_SIZE)),
            sizes.get("body", data.get("body_size", BODY_SIZE)),
        )
        stored_length = manifest.get("tokenizer", {}).get("max_length")
        prepared_text = (manifest.get("config") or {}).get("text")
        text_cfg = OmegaConf.create(prepared_text) if prepared_text else text_cfg
        source = str(manifest.get("text_source", text_cfg.get("source", SOURCE_TEMPLATE)))
        origin = f"store manifest {Path(str(store)) / 'manifest.json'}"
    else:
        context, body = data.get("context_size", CONTEXT_SIZE), data.get("body_size", BODY_SIZE)
        stored_length = None  # a training config does not record the token length; prepare's default
        source = str(text_cfg.get("source", SOURCE_TEMPLATE))
        origin = "checkpoint config (its store is not reachable here" + (
            ")" if max_length else f"; token length {DEFAULT_MAX_LENGTH}, prepare's default)"
        )
    own = model_cfg.model.get("tokenizer")  # a model that reads its own tokenizer's ids (model=clip)
    if own is not None:
        tokenizer_name, stored_length = str(own.name), _model_length(str(own.name), own.get("max_length"))
    else:
        tokenizer_name = str(model_cfg.model.text_encoder.name)
    return Preprocessing(
        modalities=[str(m) for m in model_cfg.model.modalities],
        context_size=int(context),
        body_size=int(body),
        tokenizer=tokenizer_name,
        max_length=int(max_length or stored_length or DEFAULT_MAX_LENGTH),
        text_source=source,
        text_cfg=text_cfg,
        origin=origin,
    )


def _model_length(tokenizer: str, max_length: Any = None) -> int:
    """The token length :func:`emotic_mm.data.access.retokenized` uses for this tokenizer."""
    from emotic_mm.data.access import token_length
    from emotic_mm.data.tokens import load_tokenizer

    return token_length(load_tokenizer(tokenizer, "model.tokenizer.name"), tokenizer, max_length)
