"""``attack=poison_backdoor``: a few-pixel trigger on a share of the training persons, then retrain.

Recipe: validate → clean model (given or trained once) → choose the poisoned training persons → a
poisoned *view* of the train split (trigger stamped as rows are read, target label added for the dirty
variant) → train the poisoned model with the clean model's settings → clean test metrics of both
models → attack success rate (ASR) of the trigger on both → ``summary.json``, ``examples.png``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig

from emotic_mm import figures
from emotic_mm.attacks.backdoor import (
    TriggerSpec,
    backdoor_view,
    check_poisoning,
    choose_poisoned,
    stamp,
    trigger_pixels,
    triggered_victims,
)
from emotic_mm.attacks.surface import check_surface, painted_view
from emotic_mm.data.access import dataset, person_boxes
from emotic_mm.data.categories import CATEGORIES, CATEGORY_INDEX
from emotic_mm.defenses.contracts import TrainingFilter, TriggerDetector
from emotic_mm.defenses.registry import defense_of
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


def filter_and_retrain(
    cfg: DictConfig,
    clean: Any,
    view: Any,
    poisoned_ids: np.ndarray,
    target: int,
    poisoned_model: torch.nn.Module,
    run_dir: Path,
    device: torch.device,
) -> dict[str, Any] | None:
    """``defense=spectral|activation_clustering``: detect the poisons in the poisoned model's representation,
    drop the flagged rows and retrain as the clean model was trained; ``None`` without such a defense."""
    from emotic_mm.data.poisoned import KeptRows
    from emotic_mm.recipes.poison_filter import detect_and_filter

    kind, block = defense_of(cfg)
    if not kind.acts("training"):
        return None
    detector: TrainingFilter = kind.make(block)
    keep, rates = detect_and_filter(detector, poisoned_model, view, poisoned_ids, target, device)
    retrained = train_poisoned(cfg, clean, KeptRows(view, keep), run_dir, out_name="defended_model")
    return {"detection": rates, "checkpoint": retrained}


def write_triggered_csv(path: Path, victims: np.ndarray, hit: dict[str, np.ndarray]) -> None:
    """``triggered.csv``: one row per triggered test person (``index`` in the split) and whether the trigger
    made its top-1 the target on each model — the per-person outcomes that let the report pair two
    variants poisoned with the same seed (same poisoned rows, same triggered persons) instead of
    comparing their counts."""
    table = pd.DataFrame(
        {
            "index": np.asarray(victims, dtype=np.int64),
            **{f"hit_{name}": np.asarray(v, dtype=bool) for name, v in hit.items()},
        }
    )
    with atomic_file(path) as tmp:
        table.to_csv(tmp, index=False)


def run(cfg: DictConfig, run_dir: Path | None = None) -> dict[str, Any]:
    """One run into ``run_dir`` (default: Hydra's run dir); returns what ``summary.json`` holds."""
    a = cfg.attack
    started = time.time()
    spec = TriggerSpec.from_config(a, int(cfg.seed))
    check_poisoning(float(a.rate), str(a.variant), str(a.target))  # fail fast, before any training
    with runtime(str(cfg.device), single_process=single_process_reason(cfg)) as rt:
        device = rt.device
        run_dir = Path(run_dir or output_dir())
        run_dir.mkdir(parents=True, exist_ok=True)
        clean = clean_side(cfg)
        check_surface(spec.surface, clean.modalities)
        view_name = painted_view(spec.surface)
        target = CATEGORY_INDEX[str(a.target)]
        train_set = dataset(clean.store, "train", clean.modalities)
        poisoned_ids = choose_poisoned(
            np.asarray(train_set.split.categories[:]),
            float(a.rate),
            str(a.variant),
            str(a.target),
            int(cfg.seed),
        )
        view_size = int(
            train_set.split.context.shape[1] if view_name == "context" else train_set.split.body.shape[1]
        )
        clean_model = load_model(clean.path, "cpu")[0]
        rows = trigger_pixels(spec, view_size, clean_model.image_encoders[view_name].input_size)
        view = backdoor_view(train_set, poisoned_ids, rows, spec.surface, target, str(a.variant) == "dirty")
        poisoned_path = train_poisoned(cfg, clean, view, run_dir)
        poisoned_model = load_model(poisoned_path, device)[0].eval()
        defended = filter_and_retrain(cfg, clean, view, poisoned_ids, target, poisoned_model, run_dir, device)

        test = dataset(clean.store, str(a.split), clean.modalities)
        victims = triggered_victims(np.asarray(test.split.categories[:]), str(a.target))

        def triggered(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            boxes = (
                person_boxes(test.split, batch["index"].numpy()) if spec.surface == "scene" else (None, None)
            )
            return stamp(batch, rows, spec.surface, *boxes)

        scores, asr, hit = {}, {}, {}
        for name, model in (("clean", clean_model.to(device)), ("poisoned", poisoned_model)):
            model.eval()
            scores[name] = (
                clean_split_metrics(cfg, clean.path, model, test, device)
                if name == "clean"
                else clean_metrics(model, test, device, feature_cache.folder(cfg))
            )
            hit[name] = top1(model, test, victims, device, triggered) == target
            asr[name] = float(hit[name].mean()) if len(hit[name]) else None
        summary = {
            **summary_core(cfg, clean, scores["clean"], scores["poisoned"], started),
            "rate": float(a.rate),
            "pixels": spec.pixels,
            "surface": spec.surface,
            "variant": str(a.variant),
            "target": str(a.target),
            "asr": asr["poisoned"],
            "asr_clean_model": asr["clean"],
            "trigger_pattern": spec.pattern,
            "trigger_position": str(spec.position),
            "trigger_colour": str(spec.colour),
            "trigger_cell": str(spec.cell),
            "poisoned_persons": int(len(poisoned_ids)),
            "train_persons": int(len(train_set)),
            "triggered_persons": int(len(victims)),
            "trigger_stored_pixels": int(len(rows)),
            "split": str(a.split),
            "poisoned_checkpoint": str(poisoned_path),
        }
        kind, block = defense_of(cfg)
        if kind.acts("test"):
            detector: TriggerDetector = kind.make(block)
            val = dataset(clean.store, "val", clean.modalities)
            found = detector.examine(poisoned_model, view_name, val, test, victims, triggered, device)
            summary[detector.name] = found
        if defended is not None:
            model = load_model(defended["checkpoint"], device)[0].eval()
            hit["after_defense"] = top1(model, test, victims, device, triggered) == target
            summary["detection"] = defended["detection"]
            summary["after_defense"] = {
                **clean_metrics(model, test, device, feature_cache.folder(cfg)),
                "asr": float(hit["after_defense"].mean()) if len(victims) else None,
                "checkpoint": str(defended["checkpoint"]),
            }
        write_triggered_csv(run_dir / "triggered.csv", victims, hit)
        write_json_atomic(run_dir / "summary.json", summary)
        shown = victims[: int(a.examples)]
        if len(shown):
            batch = test.__getitems__(shown.tolist())
            figures.backdoor_examples(
                run_dir / "examples.png",
                batch[view_name],
                triggered(batch)[view_name],
                [CATEGORIES[c] for c in top1(poisoned_model, test, shown, device)],
                [CATEGORIES[c] for c in top1(poisoned_model, test, shown, device, triggered)],
                view_name,
            )
        print_summary(
            summary,
            [
                ["ASR (poisoned model)", share_text(summary["asr"], summary["triggered_persons"])],
                [
                    "ASR (clean model, control)",
                    share_text(summary["asr_clean_model"], summary["triggered_persons"]),
                ],
            ],
        )
        return summary
