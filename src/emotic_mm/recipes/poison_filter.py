"""Training-set defenses against poisoning (``defense=spectral|activation_clustering``): detect the
poisoned rows in the representation of the model trained on them, drop the flagged rows, retrain.

Representations are those of the poisoned model (Tran et al. 2018; Chen et al. 2018: the backdoor is
what the trained network separates), read through the poisoned view exactly as training read it (the
trigger stamped, dirty labels added). Detection runs per category among the persons labelled with it;
for a backdoor the target category is where the poisons sit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from emotic_mm.data.batches import model_inputs, to_device
from emotic_mm.defenses.contracts import TrainingFilter


@torch.inference_mode()
def representations(
    model: nn.Module, view: Any, device: torch.device, which: str = "image", chunk: int = 128
) -> tuple[np.ndarray, np.ndarray]:
    """(features (N, D), labels (N, 26)) of every row of ``view``, in row order."""
    model.eval()
    feats, labels = [], []
    for start in range(0, len(view), chunk):
        batch = view.__getitems__(list(range(start, min(len(view), start + chunk))))
        inputs = to_device(model_inputs(batch), device)
        out = model.image_representation(inputs) if which == "image" else model(inputs)["fused_embedding"]
        feats.append(out.float().cpu().numpy())
        labels.append(batch["categories"].numpy())
    return np.concatenate(feats), np.concatenate(labels)


def detect_and_filter(
    settings: TrainingFilter,
    model: nn.Module,
    view: Any,
    poisoned_rows: np.ndarray,
    target: int,
    device: torch.device,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Rows to keep, and the detection's TPR/FPR against the known poisoned rows (with its n's)."""
    features, labels = representations(model, view, device, settings.representation)
    detection = settings.detect(features, labels, categories=[target])
    truth = np.zeros(len(view), dtype=bool)
    truth[np.asarray(poisoned_rows, dtype=np.int64)] = True
    return np.flatnonzero(~detection.flagged), detection.rates(truth)
