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

from emotic_mm.training.inference import model_inputs, to_device


@torch.inference_mode()
def representations(model: nn.Module, view: Any, device: torch.device, which: str = "image",
                    chunk: int = 128) -> tuple[np.ndarray, np.ndarray]:
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


def detect_and_filter(settings: Any, model: nn.Module, view: Any, poisoned_rows: np.ndarray, target: int,
                      device: torch.device) -> tuple[np.ndarray, dict[str, Any]]:
    """Rows to keep, and the detection's TPR/FPR against the known poisoned rows (with its n's)."""
    features, labels = representations(model, view, device, getattr(settings, "representation", "image"))
    detection = settings.detect(features, labels, categories=[target])
    truth = np.zeros(len(view), dtype=bool)
    truth[np.asarray(poisoned_rows, dtype=np.int64)] = True
    return np.flatnonzero(~detection.flagged), detection.rates(truth)


def strip_check(settings: Any, model: nn.Module, view_name: str, val: Any, test: Any, victims: np.ndarray,
                triggered: Any, device: torch.device) -> dict[str, Any]:
    """STRIP at test time (``defense=strip``): the entropy threshold is set at the target false rejection
    on held-out *val* persons (never on test); reported are the false rejection on clean test persons and
    the false acceptance (triggered persons not flagged), each with its n."""

    def entropies(data: Any, ids: np.ndarray, pool: torch.Tensor, edit: Any = None) -> np.ndarray:
        batch = data.__getitems__(ids.tolist())
        if edit is not None:
            batch = edit(batch)
        inputs = to_device(model_inputs(batch), device)

        def model_fn(blended: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
            rows = {k: v[owner] for k, v in inputs.items()}
            rows[view_name] = blended
            return model(rows)["logits"]

        with torch.inference_mode():
            return settings.entropy(model_fn, inputs[view_name].float(), pool.to(device)).numpy()

    model.eval()
    persons = int(settings.persons)
    rng = np.random.default_rng(int(settings.seed))
    val_ids = np.sort(rng.choice(len(val), size=min(persons, len(val)), replace=False))
    pool_ids = val_ids[: max(1, len(val_ids) // 2)]  # overlays from half of the held-out persons,
    calib_ids = val_ids[len(pool_ids):] if len(val_ids) > 1 else val_ids  # the threshold from the other half
    pool = val.__getitems__(pool_ids.tolist())[view_name].float()
    threshold = settings.threshold(entropies(val, calib_ids, pool))
    clean_ids = np.sort(rng.choice(len(test), size=min(persons, len(test)), replace=False))
    hit_ids = np.sort(rng.choice(victims, size=min(persons, len(victims)), replace=False)) if len(victims) else victims
    clean_h = entropies(test, clean_ids, pool)
    trig_h = entropies(test, hit_ids, pool, triggered) if len(hit_ids) else np.zeros(0)
    return {"threshold": float(threshold), "frr_target": float(settings.frr), "calibration_persons": int(len(calib_ids)),
            "false_rejection": float((clean_h < threshold).mean()), "clean_persons": int(len(clean_ids)),
            "false_acceptance": float((trig_h >= threshold).mean()) if len(trig_h) else None,
            "triggered_persons": int(len(hit_ids))}
