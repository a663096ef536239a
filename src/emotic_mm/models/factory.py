"""Config → model: ``cfg.model`` names a builder with ``_target_``; the two variants' builders live here.

``build_model`` is the one place a model is made (train, checkpoint loading, tests, benches). A user's
own variant is a config file whose ``_target_`` points at their builder (or ``nn.Module``) taking the
same keys; it must return the batch-dict-in, ``logits``/``vad``-out contract of
:class:`~emotic_mm.models.multimodal.MultiModalBase`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omegaconf import OmegaConf
from torch import nn

from emotic_mm.config import instantiate_config, real_number, whole_number
from emotic_mm.errors import ConfigError
from emotic_mm.models.encoders import ImageEncoder, TextEncoder
from emotic_mm.models.multimodal import (
    IMAGE_MODALITIES,
    MODALITIES,
    BaselineModel,
    JointModel,
    category_token_batch,
)

# A checkpoint whose model block has no _target_ names its builder by variant.
_BUILDERS = {"baseline": "emotic_mm.models.factory.baseline", "joint": "emotic_mm.models.factory.joint"}


def check_model_config(cfg: Any) -> list[str]:
    modalities = [str(m) for m in cfg.modalities]
    unknown = [m for m in modalities if m not in MODALITIES]
    if unknown or not modalities:
        raise ConfigError(
            f"model.modalities={modalities}: choose a non-empty subset of {', '.join(MODALITIES)}"
        )
    return modalities


def build_model(cfg: Any, defense: Any = None) -> nn.Module:
    """Instantiate ``cfg`` (the ``model`` block) with encoders for ``cfg.modalities`` only, and put the
    ``defense`` block's input defense (if it has one) inside its image encoders."""
    check_model_config(cfg)
    if "_target_" not in cfg and str(cfg.get("name")) in _BUILDERS:
        cfg = OmegaConf.merge(cfg, {"_target_": _BUILDERS[str(cfg.name)]})
    model = instantiate_config(cfg, "model")
    attach_input_defense(model, defense)
    return model


def attach_input_defense(model: nn.Module, defense: Any) -> None:
    """``defense=median|squeeze|ablation``: the transform goes inside the model's preprocessing (one
    module per image encoder), so training, eval, every attack and predict see the defended pipeline."""
    from emotic_mm.defenses.registry import defense_of

    kind, block = defense_of({"defense": defense})
    if not kind.acts("input"):
        return
    hook = kind.input_defense(block)
    owners = (
        [model] if hasattr(model, "attach_defense") else list(getattr(model, "image_encoders", {}).values())
    )
    if not owners:
        raise ConfigError(
            f"defense={kind.name}: model {getattr(model, 'variant', '?')} has no image stream to defend"
        )
    for owner in owners:
        owner.attach_defense(hook)


def build_image_encoders(modalities: Sequence[str], image_encoder: dict[str, Any]) -> dict[str, ImageEncoder]:
    """One encoder per image stream the model reads, each with its own working resolution."""
    sizes = image_encoder.get("input_size") or {}
    return {
        m: ImageEncoder(
            name=str(image_encoder["name"]),
            weights=image_encoder.get("weights"),
            input_size=sizes.get(m),
            freeze=bool(image_encoder.get("freeze", False)),
            channels_last=bool(image_encoder.get("channels_last", False)),
            stem_pool=bool(image_encoder.get("stem_pool", True)),
            trainable_blocks=whole_number(
                image_encoder.get("trainable_blocks", 0), "model.image_encoder.trainable_blocks", 0
            ),
            lr_scale=real_number(
                image_encoder.get("lr_scale", 1.0),
                "model.image_encoder.lr_scale",
                0.0,
                exclusive_minimum=True,
            ),
            memo_size=whole_number(
                image_encoder.get("memo_size", 50_000), "model.image_encoder.memo_size", 0
            ),
            memo_chunk=whole_number(image_encoder.get("memo_chunk", 8), "model.image_encoder.memo_chunk", 0),
            kwargs=dict(image_encoder.get("kwargs") or {}),
        )
        for m in IMAGE_MODALITIES
        if m in modalities
    }


def build_text_encoder(block: dict[str, Any]) -> TextEncoder:
    return TextEncoder(
        str(block["name"]), freeze=bool(block.get("freeze", True)), lr_scale=float(block.get("lr_scale", 1.0))
    )


def baseline(
    modalities: Sequence[str],
    image_encoder: dict[str, Any],
    text_encoder: dict[str, Any],
    embed_dim: int = 128,
    fusion_dim: int = 256,
    dropout: float = 0.2,
    name: str = "baseline",
) -> BaselineModel:
    """Part 1: a separate embedding per modality, late fusion."""
    modalities = list(modalities)
    text = build_text_encoder(text_encoder) if "text" in modalities else None
    return BaselineModel(
        modalities,
        build_image_encoders(modalities, image_encoder),
        text,
        embed_dim=int(embed_dim),
        fusion_dim=int(fusion_dim),
        dropout=float(dropout),
    )


def joint(
    modalities: Sequence[str],
    image_encoder: dict[str, Any],
    text_encoder: dict[str, Any],
    embed_dim: int = 256,
    dropout: float = 0.1,
    temperature: float = 0.07,
    category_offsets: bool = True,
    name: str = "joint",
) -> JointModel:
    """Part 2: every modality and the 26 emotion names in one shared space (the names always need text)."""
    from emotic_mm.data.tokens import load_tokenizer

    modalities = list(modalities)
    tokens = category_token_batch(load_tokenizer(str(text_encoder["name"])))
    return JointModel(
        modalities,
        build_image_encoders(modalities, image_encoder),
        build_text_encoder(text_encoder),
        tokens,
        embed_dim=int(embed_dim),
        dropout=float(dropout),
        temperature=float(temperature),
        category_offsets=bool(category_offsets),
    )
