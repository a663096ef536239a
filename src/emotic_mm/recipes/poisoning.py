"""The steps both poisoning recipes share: the clean model and store, training on a poisoned view with
the clean model's settings, clean metrics, and the summary's common part.

The store on disk is never modified: a poisoned training set is a view of it (:mod:`emotic_mm.data.poisoned`).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from torch import nn

from emotic_mm.data.access import store_for_model
from emotic_mm.data.store import Store
from emotic_mm.progress import print_table
from emotic_mm.recipes.clean_model import clean_checkpoint, training_config
from emotic_mm.training.run import train


@dataclass
class CleanSide:
    """What a poisoning run starts from: the clean model's checkpoint and config, and the store."""

    path: Path
    cfg: DictConfig
    store: Store
    modalities: list[str]


def clean_side(cfg: DictConfig) -> CleanSide:
    path, clean_cfg = clean_checkpoint(cfg)
    store = store_for_model(cfg, clean_cfg, path)
    return CleanSide(path, clean_cfg, store, [str(m) for m in clean_cfg.model.modalities])


def single_process_reason(cfg: DictConfig) -> str:
    return f"attack={cfg.attack.name} runs in one process (it trains a model)"


def train_poisoned(
    cfg: DictConfig,
    clean: CleanSide,
    view: Any,
    run_dir: Path,
    model: nn.Module | None = None,
    overrides: dict[str, Any] | None = None,
    out_name: str = "poisoned_model",
) -> Path:
    """Train on ``view`` exactly as the clean model was trained (or fine-tune ``model``); returns
    ``best/``."""
    train_cfg = training_config(cfg, clean.cfg)
    if overrides:
        train_cfg = OmegaConf.merge(train_cfg, overrides)
    out = run_dir / out_name
    train(train_cfg, run_dir=out, train_set=view, model=model)
    if not bool(cfg.attack.get("keep_last", False)):
        shutil.rmtree(out / "last", ignore_errors=True)
    return out / "best"


def summary_core(
    cfg: DictConfig, clean: CleanSide, clean_scores: dict, poisoned_scores: dict, started: float
) -> dict[str, Any]:
    """The keys every poisoning summary has: kind, model, seed, both models' clean metrics and deltas."""
    from emotic_mm.defenses.registry import defense_of

    # the defense this run measures: its own (a detector), else the clean model's (an input defense)
    own, trained = defense_of(cfg)[0], defense_of(clean.cfg)[0]
    return {
        "attack": str(cfg.attack.name),
        "model": str(clean.cfg.model.name),
        "seed": int(cfg.seed),
        "defense": own.name if own.name != "none" else trained.name,
        "clean": clean_scores,
        "poisoned": poisoned_scores,
        "delta_map": poisoned_scores["map"] - clean_scores["map"],
        "delta_dominant_acc": poisoned_scores["dominant_acc"] - clean_scores["dominant_acc"],
        "checkpoint_clean": str(clean.path),
        "wall_seconds": time.time() - started,
    }


def print_summary(summary: dict[str, Any], rows: list[list[str]]) -> None:
    c, p = summary["clean"], summary["poisoned"]
    print_table(
        f"{summary['attack']} · {summary['model']}",
        ["metric", "value"],
        [
            *rows,
            ["test mAP clean → poisoned", f"{c['map']:.4f} → {p['map']:.4f}"],
            ["dominant acc clean → poisoned", f"{c['dominant_acc']:.3f} → {p['dominant_acc']:.3f}"],
            ["wall time (s)", f"{summary['wall_seconds']:.1f}"],
        ],
    )
