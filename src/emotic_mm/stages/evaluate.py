"""``emotic-mm eval checkpoint=<run>/best split=test``: the figures papers report, and the files behind them.

Recipe: load the checkpoint (config + weights) → store → outputs on the split (and on val, where the F1
thresholds are chosen) → metrics → (``certify=true``: certificates) → ``metrics.json``,
``per_category.csv``, ``predictions.npz``, ``pr_curves.png`` and a table. The steps live in
:mod:`emotic_mm.evaluation`.

Under ``torchrun`` each rank scores one exact, unpadded block of persons; the outputs are gathered on
rank 0 in dataset order, and rank 0 alone computes the metrics and writes the files — the same
figures as one process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from emotic_mm.config import whole_number
from emotic_mm.data.access import dataset, has_checkpoint, store_for_model
from emotic_mm.errors import ConfigError
from emotic_mm.evaluation.console import print_metrics
from emotic_mm.evaluation.metrics import run_facts, split_metrics
from emotic_mm.evaluation.model import load_or_build
from emotic_mm.evaluation.outputs import write_outputs
from emotic_mm.evaluation.scoring import split_outputs
from emotic_mm.models import feature_cache
from emotic_mm.recipes.certification import certify_split, print_certified
from emotic_mm.runinfo import output_dir, record_run
from emotic_mm.training.distributed import DistInfo
from emotic_mm.training.runtime import runtime


def evaluate(cfg: DictConfig, run_dir: Path | None = None) -> dict[str, Any]:
    """Evaluate ``cfg.checkpoint`` on ``cfg.split``; returns the metrics written to ``metrics.json``."""
    run_dir = Path(run_dir or output_dir())
    run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.split not in ("val", "test", "train"):
        raise ConfigError(f"split={cfg.split!r} is not one of val, test, train")
    if not has_checkpoint(cfg) and cfg.get("model") is None:
        raise ConfigError(
            "checkpoint is not set: pass checkpoint=outputs/train/<date>/<time>/best "
            "(or model=clip checkpoint=null for a zero-shot evaluation)"
        )
    if cfg.get("certify_persons") is not None:  # before any work: a bad subset size is one line
        whole_number(cfg.certify_persons, "certify_persons", 1)
    with runtime(str(cfg.device)) as rt:
        return _evaluate(cfg, run_dir, rt.device, rt.dist)


def _evaluate(cfg: DictConfig, run_dir: Path, device: torch.device, dist: DistInfo) -> dict[str, Any]:
    model, model_cfg, meta, checkpoint = load_or_build(cfg, device)
    modalities = [str(m) for m in model_cfg.model.modalities]
    store = store_for_model(cfg, model_cfg, checkpoint)

    def outputs(split: str) -> tuple[dict[str, torch.Tensor] | None, list[int]]:
        return split_outputs(
            model,
            store,
            split,
            modalities,
            device,
            dist,
            int(cfg.batch_size),
            int(cfg.workers),
            str(cfg.precision),
            feature_cache.folder(cfg),
        )

    out, per_rank = outputs(str(cfg.split))
    val = out if cfg.split == "val" else outputs("val")[0]
    if not dist.is_main:
        return {}
    metrics, f1, thresholds = split_metrics(out, val)
    metrics.update(run_facts(cfg, model_cfg, meta, checkpoint, out["logits"].shape[0], dist, per_rank))
    if bool(cfg.get("certify", False)):
        certified = certify_split(
            cfg, model, model_cfg, dataset(store, str(cfg.split), modalities), device, run_dir
        )
        print_certified(certified)
        metrics["certified"] = certified.figures
    write_outputs(run_dir, metrics, out, f1, thresholds)
    print_metrics(metrics)
    return metrics


def main(cfg: DictConfig) -> dict[str, Any]:
    record_run("eval", cfg, None)
    return evaluate(cfg)
