"""Run a model over a loader and keep what metrics, eval and attacks need (on the CPU)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from emotic_mm.data.batches import model_inputs, to_device

OUTPUT_KEYS = ("logits", "vad", "image_embedding", "text_embedding", "zero_shot")
BATCH_KEYS = ("categories", "vad", "votes", "index")


def autocast_for(device: torch.device, precision: str):
    """AMP context on CUDA for bf16/fp16; a no-op elsewhere (CPU trains in fp32)."""
    if device.type == "cuda" and precision in ("bf16", "fp16"):
        return torch.autocast("cuda", dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
    return nullcontext()


@torch.inference_mode()
def collect_outputs(
    model: nn.Module, loader: DataLoader, device: torch.device, precision: str = "32"
) -> dict[str, Any]:
    """Concatenated model outputs and labels over the loader, in loader order."""
    was_training = model.training
    model.eval()
    outputs: dict[str, list[torch.Tensor]] = {}
    try:
        for batch in loader:
            batch = to_device(batch, device)
            with autocast_for(device, precision):
                out = model(batch)
            for k in OUTPUT_KEYS:
                if k in out:
                    outputs.setdefault(k if k != "vad" else "vad_pred", []).append(out[k].float().cpu())
            for k in BATCH_KEYS:
                if k in batch:
                    outputs.setdefault(k if k != "vad" else "vad_true", []).append(batch[k].cpu())
    finally:
        model.train(was_training)
    return {k: torch.cat(v) for k, v in outputs.items()}


def top1(
    model: nn.Module,
    data: Any,
    ids: np.ndarray,
    device: torch.device,
    edit: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None,
    chunk: int = 128,
) -> np.ndarray:
    """Top-1 category of ``model`` on the persons ``ids`` of ``data``, after ``edit(batch)`` if given."""
    was_training = model.training
    model.eval()
    preds = []
    try:
        with torch.inference_mode():
            for i in range(0, len(ids), chunk):
                batch = data.__getitems__(ids[i : i + chunk].tolist())
                if edit is not None:
                    batch = edit(batch)
                preds.append(model(to_device(model_inputs(batch), device))["logits"].argmax(1).cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)


def clean_metrics(
    model: nn.Module, data: Any, device: torch.device, cache_dir: Path | None = None
) -> dict[str, float]:
    """mAP, dominant-emotion accuracy and VAD error of ``model`` on a whole split (no attack involved).
    With ``cache_dir`` a fixed image encoder reads the split's features kept there (and keeps new ones)."""
    from emotic_mm.models.warming import warm_image_features, warm_text_features
    from emotic_mm.training.distributed import DistInfo
    from emotic_mm.training.metrics import emotion_metrics
    from emotic_mm.training.runtime import make_loader

    warm_text_features(model, [data])
    if cache_dir is not None:
        warm_image_features(model, [(data, False)], cache_dir=cache_dir)
    out = collect_outputs(model, make_loader(data, 128, 0, device, False, 0, DistInfo()), device)
    m = emotion_metrics(out["logits"], out["categories"], out["vad_pred"], out["vad_true"], out.get("votes"))
    return {"map": m["map"], "dominant_acc": m["dominant_acc"], "vad_mae": m["vad_mae"]}
