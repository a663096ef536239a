"""``attack=poison_collision``: clean-label feature-collision poisons (Poison Frogs), then fine-tune.

Recipe: validate → clean model → targets (test persons) and bases (training persons of the base class)
→ all poisons crafted as one batch → poisoned view of the train split (base rows replaced by their
poisons, labels untouched) → fine-tune (head or all) or retrain → is each target now classified as the
base class? → clean metrics of both → ``summary.json``, ``poisons.npz``, ``examples.png``.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from emotic_mm import figures
from emotic_mm.attacks.collision import CollisionPlan, CollisionSettings, PoisonRows, craft, image_features
from emotic_mm.data.access import dataset
from emotic_mm.data.categories import CATEGORY_INDEX
from emotic_mm.data.poisoned import PoisonedView
from emotic_mm.errors import ConfigError
from emotic_mm.fsutil import atomic_file, write_json_atomic
from emotic_mm.models import feature_cache
from emotic_mm.models.loading import load_model
from emotic_mm.progress import share_text
from emotic_mm.recipes.clean_model import clean_split_metrics
from emotic_mm.recipes.poisoning import (
    clean_side,
    print_summary,
    single_process_reason,
    summary_core,
    train_poisoned,
)
from emotic_mm.runinfo import output_dir
from emotic_mm.training.inference import clean_metrics, top1
from emotic_mm.training.runtime import runtime


def run(cfg: DictConfig, run_dir: Path | None = None) -> dict[str, Any]:
    """One run into ``run_dir`` (default: Hydra's run dir); returns what ``summary.json`` holds."""
    a = cfg.attack
    started = time.time()
    settings = CollisionSettings.from_config(a)
    plan = CollisionPlan.from_config(a)
    with runtime(str(cfg.device), single_process=single_process_reason(cfg)) as rt:
        device = rt.device
        run_dir = Path(run_dir or output_dir())
        run_dir.mkdir(parents=True, exist_ok=True)
        clean = clean_side(cfg)
        views = [v for v in ("context", "body") if v in clean.modalities]
        if not views:
            raise ConfigError(
                f"poison_collision needs an image stream; the clean model has modalities {clean.modalities}"
            )
        base_class = CATEGORY_INDEX[plan.base]
        model = load_model(clean.path, device)[0].eval()
        train_set, test = (
            dataset(clean.store, "train", clean.modalities),
            dataset(clean.store, str(a.split), clean.modalities),
        )

        test_labels = np.asarray(test.split.categories[:])
        test_top1 = np.full(len(test), -1)
        lacking = np.flatnonzero(test_labels[:, base_class] == 0)
        test_top1[lacking] = top1(model, test, lacking, device)  # only these can become targets
        targets, bases, owner = plan.choose(
            test_labels,
            test_top1,
            np.asarray(train_set.split.categories[:]),
            np.random.default_rng(int(cfg.seed)),
        )

        target_batch = test.__getitems__(targets.tolist())
        target_features = image_features(model, {v: target_batch[v].to(device) for v in views})[
            torch.from_numpy(owner)
        ]
        base_batch = train_set.__getitems__(bases.tolist())
        crafted = craft(model, {v: base_batch[v].to(device) for v in views}, target_features, settings)
        poisons = {v: crafted.poisons[v].cpu() for v in views}
        view = PoisonedView(train_set, bases, PoisonRows(bases, poisons))
        start_model, overrides = None, None
        if plan.finetune != "retrain":
            start_model = copy.deepcopy(model)  # the clean weights, without reading the checkpoint again
            if (
                plan.finetune == "head"
            ):  # transfer learning, the Poison Frogs setting: encoders fixed, heads learn
                for enc in start_model.image_encoders.values():
                    enc.frozen = True
                    enc.backbone.requires_grad_(False)
            overrides = {
                "trainer": {
                    "epochs": int(a.finetune_epochs),
                    "optimizer": {"lr": float(a.finetune_lr)},
                    "early_stopping_patience": 0,
                }
            }
        poisoned_path = train_poisoned(cfg, clean, view, run_dir, start_model, overrides)

        poisoned_model = load_model(poisoned_path, device)[0].eval()
        success = top1(poisoned_model, test, targets, device) == base_class
        summary = {
            **summary_core(
                cfg,
                clean,
                clean_split_metrics(cfg, clean.path, model, test, device),
                clean_metrics(poisoned_model, test, device, feature_cache.folder(cfg)),
                started,
            ),
            "n_poisons": plan.n_poisons,
            "targets": plan.targets,
            "base": plan.base,
            "beta": settings.beta,
            "epsilon": settings.epsilon,
            "steps": settings.steps,
            "lr": settings.lr,
            "finetune": plan.finetune,
            "target_success_rate": float(success.mean()),
            "target_indices": targets.tolist(),
            "target_success": success.tolist(),
            "feature_distance_start": float(crafted.feature_loss[0]),
            "feature_distance_end": float(crafted.final_distance.mean()),
            "max_pixel_change": float(crafted.max_change.max()),
            "split": str(a.split),
            "poisoned_checkpoint": str(poisoned_path),
        }
        with atomic_file(run_dir / "poisons.npz") as tmp:
            np.savez_compressed(
                tmp,
                base_index=bases,
                target_index=targets[owner],
                **{f"poison_{v}": poisons[v].numpy() for v in views},
            )
        write_json_atomic(run_dir / "summary.json", summary)
        count = min(int(a.examples), len(owner))
        shown = views[0]
        figures.collision_examples(
            run_dir / "examples.png",
            base_batch[shown][:count],
            poisons[shown][:count],
            target_batch[shown][torch.from_numpy(owner[:count])],
            shown,
        )
        print_summary(
            summary,
            [
                [
                    "targets classified as the base class (poisoned)",
                    share_text(summary["target_success_rate"], plan.targets),
                ],
                [
                    "feature distance start → end",
                    f"{summary['feature_distance_start']:.3f} → {summary['feature_distance_end']:.3f}",
                ],
            ],
        )
        return summary
