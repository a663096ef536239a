"""``train(cfg)``: one model trained on the store named by ``data.prepared_dir``, as a library function.

The ``train`` stage calls it, and so do the attacks that need a model trained (the clean-model cache,
the poisoning recipes); none of them imports another stage. Works unchanged under ``torchrun``.

Recipe: runtime (device, process group) → seed → store and loaders → model → objective → trainer
(resume if asked) → fit → ``train_summary.json``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig
from torch import nn
from torch.utils.data import Dataset

from emotic_mm.checkpoint import checkpoint_dir
from emotic_mm.data.access import dataset, store_for_model
from emotic_mm.data.categories import CATEGORIES
from emotic_mm.data.store import store_fingerprint
from emotic_mm.errors import ConfigError
from emotic_mm.fsutil import write_json_atomic
from emotic_mm.models import feature_cache
from emotic_mm.models.factory import build_model, check_model_config
from emotic_mm.models.warming import warm_image_features, warm_text_features
from emotic_mm.progress import print_table
from emotic_mm.training.losses import build_objective
from emotic_mm.training.runtime import make_loader, runtime, seed_everything
from emotic_mm.training.trainer import Trainer, check_trainer_config

log = logging.getLogger(__name__)


def _resume_path(cfg: DictConfig, run_dir: Path) -> Path | None:
    resume = cfg.trainer.resume
    if resume in (None, False, "false", ""):
        return None
    path = run_dir / "last" if resume is True or str(resume).lower() == "true" else Path(str(resume))
    if not path.exists():
        raise ConfigError(
            f"trainer.resume: no checkpoint at {path} (use hydra.run.dir=<previous run dir> "
            "with trainer.resume=true, or trainer.resume=<run>/last)"
        )
    return checkpoint_dir(path)


def check_trainable(store: Path, train_set: Dataset, val_set: Dataset) -> None:
    """Refuse to train on nothing: an empty train or val split, or a train split without one positive."""
    for name, data in (("train", train_set), ("val", val_set)):
        if len(data) == 0:
            raise ConfigError(
                f"{store}: the {name} split has no persons; nothing to train on "
                "(see the store's manifest.json for why persons were skipped)"
            )
    labels = np.asarray(train_set.split.categories[:])
    if labels.sum() == 0:
        raise ConfigError(
            f"{store}: the train split has no positive label for any category; nothing to learn"
        )
    absent = [CATEGORIES[c] for c in np.flatnonzero(labels.sum(0) == 0)]
    if absent:
        log.warning(
            "%s: no train person carries %s; the model cannot learn %s",
            store,
            ", ".join(absent),
            "it" if len(absent) == 1 else "them",
        )


def train(
    cfg: DictConfig, run_dir: Path, train_set: Dataset | None = None, model: nn.Module | None = None
) -> dict[str, Any]:
    """Train one model into ``run_dir``; returns the summary written to ``train_summary.json``.

    ``train_set`` replaces the store's train split (the poisoning attacks pass a poisoned view of it);
    ``model`` starts from given weights instead of a fresh ``build_model`` (fine-tuning).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    modalities = check_model_config(cfg.model)
    check_trainer_config(cfg.trainer)  # before anything is built: a bad value is one line
    batch_size = int(cfg.trainer.batch_size)
    with runtime(str(cfg.device), threads=cfg.trainer.get("threads")) as rt:
        device, dist = rt.device, rt.dist
        if batch_size % dist.world_size:
            raise ConfigError(f"trainer.batch_size={batch_size} must divide by the {dist.world_size} ranks")
        seed_everything(int(cfg.seed))
        store = store_for_model(cfg, cfg)
        val_set = dataset(store, "val", modalities)
        if train_set is None:
            train_set = dataset(store, "train", modalities)
        check_trainable(store.path, train_set, val_set)
        per_rank = batch_size // dist.world_size
        workers = int(cfg.trainer.workers)
        train_loader = make_loader(
            train_set,
            per_rank,
            workers,
            device,
            True,
            int(cfg.seed),
            dist,
            drop_last=len(train_set) > batch_size,
        )
        val_loader = make_loader(
            val_set, int(cfg.trainer.eval_batch_size), workers, device, False, 0, dist.__class__()
        )  # every rank validates on the whole split
        model = (model if model is not None else build_model(cfg.model, cfg.get("defense"))).to(device)
        warm_text_features(model, [train_set, val_set])
        warm_image_features(
            model,
            [(train_set, bool(cfg.trainer.augment.flip)), (val_set, False)],
            cache_dir=feature_cache.folder(cfg),
        )
        manifest = store.path / "manifest.json"
        trainer = Trainer(
            model,
            build_objective(cfg.loss),
            cfg.trainer,
            cfg,
            run_dir,
            dist,
            device,
            steps_per_epoch=len(train_loader),
            store_id=store_fingerprint(manifest) if manifest.is_file() else None,
            view_sizes=store.view_sizes,
        )
        resume = _resume_path(cfg, run_dir)
        if resume is not None:
            trainer.resume(resume)
        result = trainer.fit(train_loader, val_loader)
        summary = {
            "variant": str(cfg.model.name),
            "modalities": modalities,
            "seed": int(cfg.seed),
            "best_epoch": result.best_epoch,
            "best_val": result.best_val,
            "stopped_early": result.stopped_early,
            "epochs_run": len(result.history),
            "world_size": dist.world_size,
            "device": str(device),
            "train_seconds": sum(e.seconds for e in result.history),
            "images_per_s": (sum(e.images_per_s for e in result.history) / len(result.history))
            if result.history
            else None,
            "checkpoints": {
                name: str(run_dir / name) for name in ("best", "last") if (run_dir / name).is_dir()
            },
        }
        if dist.is_main:
            write_json_atomic(run_dir / "train_summary.json", summary)
            v = result.best_val
            if v:
                print_table(
                    f"{cfg.model.name} {'+'.join(modalities)} · best epoch {result.best_epoch + 1}",
                    ["split", "mAP", "mAP (VOC)", "dominant acc", "VAD MAE"],
                    [
                        [
                            "val",
                            f"{v['map']:.4f}",
                            f"{v['map_voc']:.4f}",
                            f"{v['dominant_acc']:.3f}",
                            f"{v['vad_mae']:.3f}",
                        ]
                    ],
                )
        return summary
