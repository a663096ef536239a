"""Tiny trained checkpoints: one epoch on a tiny store, small batches, encoders at 32 px."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from support.compose import TINY_TRAIN, compose_cfg

# One epoch, batches of 8; BCE: the one-epoch model already gets a few top-1s right (attack summaries).
TINY_CHECKPOINT = [*TINY_TRAIN, "trainer.epochs=1", "trainer.batch_size=8", "loss.discrete=bce"]


def train_tiny(store: Path, run_dir: Path, variant: str = "baseline", overrides: Sequence[str] = ()) -> Path:
    """Train ``model=variant`` on ``store`` with TINY_CHECKPOINT (+ ``overrides``); returns its ``best``."""
    from emotic_mm.training.run import train

    cfg = compose_cfg(
        "train", [f"data.prepared_dir={store}", f"model={variant}", *TINY_CHECKPOINT, *overrides]
    )
    train(cfg, run_dir=run_dir)
    return Path(run_dir) / "best"
