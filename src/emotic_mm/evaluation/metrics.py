"""The figures ``eval`` reports on a split: mAP (two definitions), dominant accuracy, VAD error, F1 at
thresholds chosen on val, and retrieval and zero-shot figures for the models that have them."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from emotic_mm.training.metrics import emotion_metrics, equal_error_thresholds, f1_at, retrieval_recall


def split_metrics(
    out: dict[str, torch.Tensor], val: dict[str, torch.Tensor]
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """The metrics of ``out``, its per-category F1 and the val thresholds the F1 was read at."""
    metrics = emotion_metrics(
        out["logits"], out["categories"], out["vad_pred"], out["vad_true"], out.get("votes")
    )
    thresholds = equal_error_thresholds(val["logits"].numpy(), val["categories"].numpy())
    f1 = f1_at(out["logits"].numpy(), out["categories"].numpy(), thresholds)
    metrics["f1"] = float(np.nanmean(f1))
    if "image_embedding" in out and "text_embedding" in out:
        metrics["retrieval"] = retrieval_recall(out["image_embedding"], out["text_embedding"])
    if "zero_shot" in out:
        metrics["zero_shot_map"] = emotion_metrics(
            out["zero_shot"], out["categories"], out["vad_pred"], out["vad_true"]
        )["map"]
    return metrics, f1, thresholds


def run_facts(
    cfg: Any,
    model_cfg: Any,
    meta: dict[str, Any],
    checkpoint: Any,
    persons: int,
    world: Any,
    per_rank: list[int],
) -> dict[str, Any]:
    """What ``metrics.json`` says about the evaluation itself: split, persons, checkpoint, model, ranks."""
    return {
        "split": str(cfg.split),
        "persons": int(persons),
        "checkpoint": str(checkpoint) if checkpoint else None,
        "zero_shot": bool(meta.get("zero_shot", False)),
        "variant": str(model_cfg.model.name),
        "modalities": [str(m) for m in model_cfg.model.modalities],
        "trained_epoch": meta.get("epoch"),
        "world_size": world.world_size,
        "persons_per_rank": per_rank,
        "ap_definition": "torchmetrics/sklearn average precision; map_voc = MATLAB demoComputeAP",
    }
