"""The pixel-evasion figure: success against the pixel budget k, with Wilson bands."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from emotic_mm.attacks.registry import AttackKind
from emotic_mm.figures import REPORT_DPI, pyplot, save
from emotic_mm.report.plots import colours, groups, rate_line, wrap, x_axis
from emotic_mm.report.tables import natural_key, setting_label


def success_vs_pixels(kind: AttackKind, curve: pd.DataFrame, keys: list[str], path: Path) -> bool:
    """Success against k with Wilson bands: one panel per surface (columns) and per other setting (rows:
    algorithm, targeted, budget, …), one line per model × modality set (a one-k study gets its points and
    interval bars). False (nothing written) without data."""
    if curve.empty:
        return False
    plt = pyplot()
    row_keys = [k for k in keys if k != "surface"]
    rows = sorted(
        (values for values, _ in groups(curve, row_keys)),
        key=lambda v: tuple(natural_key(x) for x in v.values()),
    )
    surfaces = sorted(curve["surface"].unique()) if "surface" in curve else [None]
    colour = colours(curve["arm"])
    fig, axes = plt.subplots(
        len(rows), len(surfaces), figsize=(4.2 * len(surfaces), 3.4 * len(rows)), squeeze=False
    )
    for i, values in enumerate(rows):
        for j, surface in enumerate(surfaces):
            ax = axes[i][j]
            mask = np.ones(len(curve), bool)
            for key, value in values.items():
                mask &= (curve[key] == value).to_numpy()
            if surface is not None:
                mask &= (curve["surface"] == surface).to_numpy()
            sub = curve[mask]
            if sub.empty:  # this surface was not attacked in this setting
                ax.axis("off")
                continue
            for arm, line in sub.groupby("arm", sort=True):
                line = line.sort_values("k")
                rate_line(ax, line["k"].to_numpy(float), line, "success", colour[arm], arm)
            title = setting_label(kind, {**({"surface": surface} if surface else {}), **values})
            ax.set_title(wrap(title), fontsize=7)
            x_axis(ax, sub["k"].to_numpy(float), "pixels changed (k)")
            ax.set_ylim(-2, 102)
            ax.set_ylabel("attack success (%)", fontsize=8)
            ax.legend(fontsize=6, loc="upper left")
    fig.suptitle(f"{kind.title}: success vs k (pooled over seeds, band = Wilson 95 %)", fontsize=9)
    save(fig, path, dpi=REPORT_DPI)
    return True
