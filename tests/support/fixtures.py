"""Session fixtures, registered by conftest.py: each release, store, captioner and checkpoint is built
once per test session, whichever test files ask for it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support.checkpoints import train_tiny
from support.main_release import MAIN_SPEC, PERM_SPEC
from support.releases import make_release, permuted_labels
from support.stores import TOKENIZER, convert, synthetic_store


@dataclass(frozen=True)
class TinyRun:
    """The tiny synthetic release, its store and a one-epoch baseline (context+body+text) checkpoint."""

    raw: Path
    store: Path
    checkpoint: Path


# --------------------------------------------------------------------------- hand-written releases
@pytest.fixture(scope="session")
def tokenizer() -> Any:
    from emotic_mm.data.tokens import load_tokenizer

    return load_tokenizer(TOKENIZER)


@pytest.fixture(scope="session")
def main_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_release(tmp_path_factory.mktemp("main") / "raw", MAIN_SPEC)


@pytest.fixture(scope="session")
def main_store(main_raw: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("main_store") / "store"
    manifest = convert(main_raw, out, workers=0)
    return out, manifest


@pytest.fixture(scope="session")
def perm_raws(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("perm")
    return make_release(base / "raw", PERM_SPEC), make_release(
        base / "raw_permuted", permuted_labels(PERM_SPEC)
    )


@pytest.fixture(scope="session")
def tiny_blip(tmp_path_factory: pytest.TempPathFactory, tokenizer: Any) -> Path:
    """A randomly initialised, tiny BLIP captioner saved with its processor (MiniLM's tokenizer)."""
    import torch
    from transformers import BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor

    config = BlipConfig(
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
        text_config=dict(
            vocab_size=tokenizer.vocab_size,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=64,
            bos_token_id=101,
            eos_token_id=102,
            sep_token_id=102,
            pad_token_id=0,
        ),
        projection_dim=32,
    )
    torch.manual_seed(0)
    model = BlipForConditionalGeneration(config).eval()
    processor = BlipProcessor(
        image_processor=BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer=tokenizer
    )
    out = tmp_path_factory.mktemp("tiny_blip")
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


# --------------------------------------------------------------------------- synthetic stores and checkpoints
@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Seed 3, train/val/test = 16/8/8 images of 48-72 px, no defects, 48 tokens."""
    return synthetic_store(
        tmp_path_factory.mktemp("tiny_store"),
        seed=3,
        images={"train": 16, "val": 8, "test": 8},
        min_side=48,
        max_side=72,
        defects_per_split=0,
    )


@pytest.fixture(scope="session")
def train_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seed 3, 48/16/16 images of 64-96 px: a few batches per epoch for the training tests."""
    return synthetic_store(
        tmp_path_factory.mktemp("train_store"),
        seed=3,
        images={"train": 48, "val": 16, "test": 16},
        min_side=64,
        max_side=96,
        defects_per_split=0,
    ).store


@pytest.fixture(scope="session")
def poison_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seed 5, 60/16/24 images of 64-96 px: enough training persons for a backdoor to be learnt."""
    return synthetic_store(
        tmp_path_factory.mktemp("poison_store"),
        seed=5,
        images={"train": 60, "val": 16, "test": 24},
        min_side=64,
        max_side=96,
        defects_per_split=0,
    ).store


@pytest.fixture(scope="session")
def tiny_checkpoints(tiny_store: Any, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``get(variant="baseline", modalities=None)``: a one-epoch checkpoint on ``tiny_store``, trained on
    first request and shared for the rest of the session."""
    trained: dict[tuple[str, tuple[str, ...] | None], Path] = {}

    def get(variant: str = "baseline", modalities: Sequence[str] | None = None) -> Path:
        key = (variant, None if modalities is None else tuple(modalities))
        if key not in trained:
            name = variant if modalities is None else f"{variant}_{'_'.join(modalities)}"
            extra = [] if modalities is None else [f"model.modalities=[{','.join(modalities)}]"]
            trained[key] = train_tiny(
                tiny_store.store, tmp_path_factory.mktemp(f"tiny_{name}"), variant, extra
            )
        return trained[key]

    return get


@pytest.fixture(scope="session")
def tiny(tiny_store: Any, tiny_checkpoints: Callable[..., Path]) -> TinyRun:
    """The tiny release, its store and the one-epoch baseline checkpoint."""
    return TinyRun(tiny_store.raw, tiny_store.store, tiny_checkpoints("baseline"))


@pytest.fixture(scope="session")
def tiny_text_only(tiny_checkpoints: Callable[..., Path]) -> Path:
    """A one-epoch checkpoint that reads descriptions only (no pictures)."""
    return tiny_checkpoints("baseline", ["text"])


@pytest.fixture(scope="session")
def clip_towers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random CLIP and SigLIP folders (model + processor + MiniLM tokenizer), by kind."""
    from transformers.utils import logging as hf_logging

    from support.clip import save_tiny

    hf_logging.set_verbosity_error()  # SigLIP's default text config warns about ids we then replace
    root = tmp_path_factory.mktemp("towers")
    return {kind: save_tiny(root / kind, kind) for kind in ("clip", "siglip")}
