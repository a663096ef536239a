"""The files ``eval`` writes into its run dir; ``metrics.json`` last, so its presence means a complete run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from emotic_mm import figures
from emotic_mm.data.categories import CATEGORIES
from emotic_mm.fsutil import atomic_file, write_json_atomic


def write_outputs(
    run_dir: Path,
    metrics: dict[str, Any],
    out: dict[str, torch.Tensor],
    f1: np.ndarray,
    thresholds: np.ndarray,
) -> None:
    """``per_category.csv``, ``predictions.npz``, ``pr_curves.png``, then ``metrics.json``."""
    labels = out["categories"].numpy()
    with atomic_file(run_dir / "per_category.csv") as tmp:
        pd.DataFrame(
            {
                "category": CATEGORIES,
                "ap": [metrics["per_category_ap"][c] for c in CATEGORIES],
                "ap_voc": [metrics["per_category_ap_voc"][c] for c in CATEGORIES],
                "f1": f1,
                "threshold_from_val": thresholds,
                "positives": labels.sum(0).astype(int),
            }
        ).to_csv(tmp, index=False)
    arrays = {k: v.numpy() for k, v in out.items()}
    with atomic_file(run_dir / "predictions.npz") as tmp:
        np.savez_compressed(tmp, scores=torch.sigmoid(out["logits"]).numpy(), **arrays)
    figures.pr_curves(
        run_dir / "pr_curves.png",
        out["logits"],
        out["categories"],
        metrics["per_category_ap"],
        f"{metrics['variant']} ({'+'.join(metrics['modalities'])}) · {metrics['split']} · "
        f"mAP {metrics['map']:.4f}",
    )
    write_json_atomic(run_dir / "metrics.json", metrics)  # last: its presence means the run is complete
