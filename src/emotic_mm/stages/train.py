"""``emotic-mm train``: train the baseline or joint model on the store named by ``data.prepared_dir``.

Recipe: distributed setup → seed → store and loaders → model → objective → trainer (resume if asked)
→ fit → summary in the run dir. Works unchanged under ``torchrun`` (one process per GPU/CPU rank).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
import torch
from torch import nn
from torch.utils.data import Dataset

from emotic_mm.checkpoint import checkpoint_dir
from emotic_mm.errors import ConfigError
from emotic_mm.fsutil import write_json_atomic
from emotic_mm.models.factory import build_model, check_model_config
from emotic_mm.progress import print_table
from emotic_mm.runinfo import output_dir, record_run
from emotic_mm.stages.common import check_store_fits_model, dataset, open_store, warm_text_features
from emotic_mm.training.distributed import cleanup, setup_distributed
from emotic_mm.training.losses import build_objective
from emotic_mm.training.trainer import Trainer, make_loader, seed_everything, select_device

log = logging.getLogger(__name__)


def _resume_path(cfg: DictConfig, run_dir: Path) -> Path | None:
    resume = cfg.trainer.resume
    if resume in (None, False, "false", ""):
        return None
    path = run_dir / "last" if resume is True or str(resume).lower() == "true" else Path(str(resume))
    if not path.exists():
        raise ConfigError(f"trainer.resume: no checkpoint at {path} (use hydra.run.dir=<previous run dir> "
                          "with trainer.resume=true, or trainer.resume=<run>/last)")
    return checkpoint_dir(path)


def train(cfg: DictConfig, run_dir: Path | None = None, train_set: Dataset | None = None,
          model: nn.Module | None = None) -> dict[str, Any]:
    """Train one model; returns the summary written to ``train_summary.json``.

    ``train_set`` replaces the store's train split (the poisoning attacks pass a poisoned view of it);
    ``model`` starts from given weights instead of a fresh ``build_model`` (fine-tuning).
    """
    run_dir = Path(run_dir or output_dir())
    run_dir.mkdir(parents=True, exist_ok=True)
    modalities = check_model_config(cfg.model)
    batch_size = int(cfg.trainer.batch_size)
    if cfg.trainer.get("threads"):  # fewer intra-op threads helps when other jobs share the CPU
        torch.set_num_threads(int(cfg.trainer.threads))
    device = select_device(str(cfg.trainer.device))
    owns_group = not (torch.distributed.is_available() and torch.distributed.is_initialized())
    dist = setup_distributed(device.type)
    if batch_size % dist.world_size:
        raise ConfigError(f"trainer.batch_size={batch_size} must divide by the {dist.world_size} ranks")
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    try:
        seed_everything(int(cfg.seed))
        store = open_store(cfg)
        check_store_fits_model(store, cfg.model)
        val_set = dataset(store, "val", modalities)
        if train_set is None:
            train_set = dataset(store, "train", modalities)
        per_rank = batch_size // dist.world_size
        workers = int(cfg.trainer.workers)
        train_loader = make_loader(train_set, per_rank, workers, device, True, int(cfg.seed), dist,
                                   drop_last=len(train_set) > batch_size)
        val_loader = make_loader(val_set, int(cfg.trainer.eval_batch_size), workers, device, False, 0,
                                 dist.__class__())  # every rank validates on the whole split
        model = (model if model is not None else build_model(cfg.model)).to(device)
        warm_text_features(model, [train_set, val_set])
        trainer = Trainer(model, build_objective(cfg.loss), cfg.trainer, cfg, run_dir, dist, device,
                          steps_per_epoch=len(train_loader))
        resume = _resume_path(cfg, run_dir)
        if resume is not None:
            trainer.resume(resume)
        result = trainer.fit(train_loader, val_loader)
        summary = {
            "variant": str(cfg.model.name), "modalities": modalities, "seed": int(cfg.seed),
            "best_epoch": result.best_epoch, "best_val": result.best_val, "stopped_early": result.stopped_early,
            "epochs_run": len(result.history), "world_size": dist.world_size, "device": str(device),
            "train_seconds": sum(e.seconds for e in result.history),
            "images_per_s": (sum(e.images_per_s for e in result.history) / len(result.history)) if result.history else None,
            "checkpoints": {"best": str(run_dir / "best"), "last": str(run_dir / "last")},
        }
        if dist.is_main:
            write_json_atomic(run_dir / "train_summary.json", summary)
            v = result.best_val
            if v:
                print_table(f"{cfg.model.name} {'+'.join(modalities)} · best epoch {result.best_epoch + 1}",
                            ["split", "mAP", "mAP (VOC)", "dominant acc", "VAD MAE"],
                            [["val", f"{v['map']:.4f}", f"{v['map_voc']:.4f}", f"{v['dominant_acc']:.3f}", f"{v['vad_mae']:.3f}"]])
        return summary
    finally:
        if owns_group:  # a caller's process group (e.g. the attack stage's) is the caller's to end
            cleanup(dist)


def main(cfg: DictConfig) -> dict[str, Any]:
    record_run("train", cfg, int(cfg.seed))
    return train(cfg)
