"""The poisoning figures: backdoor ASR against the poison rate or trigger size, and what poisoning cost
on clean data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from emotic_mm.attacks.registry import AttackKind
from emotic_mm.figures import REPORT_DPI, pyplot, save
from emotic_mm.report.plots import colours, groups, rate_line, wrap, x_axis
from emotic_mm.report.tables import natural_key, setting_label


def asr_vs(
    kind: AttackKind,
    table: pd.DataFrame,
    keys: list[str],
    x_key: str,
    path: Path,
    xlabel: str,
    scale: float = 1.0,
) -> bool:
    """Backdoor ASR against ``x_key`` (poison rate, trigger size) with Wilson bands, one panel per label
    variant (dirty/clean), one line per model × the other settings, dashed: the clean-model control.
    Only lines with two or more x values are drawn; False (nothing written) if there is none."""
    panel_keys = [k for k in ("variant",) if k in keys and k != x_key]
    line_keys = ["model"] + [k for k in keys if k not in (x_key, *panel_keys)]
    table = table.assign(_x=pd.to_numeric(table[x_key], errors="coerce") * scale)
    lines = [(v, sub) for v, sub in groups(table, panel_keys + line_keys) if sub["_x"].nunique() >= 2]
    if not lines:
        return False
    plt = pyplot()
    lines.sort(key=lambda item: tuple(natural_key(v) for v in item[0].values()))
    panels = sorted({tuple(v[k] for k in panel_keys) for v, _ in lines})
    fig, axes = plt.subplots(1, len(panels), figsize=(5.0 * len(panels), 3.6), squeeze=False, sharey=True)
    names = {}
    for values, _ in lines:
        rest = {k: v for k, v in values.items() if k in line_keys and k != "model"}
        names[tuple(values.items())] = " · ".join(
            [values["model"], *setting_label(kind, rest).split(" · ")[1:]]
        )
    colour = colours(names.values())
    for ax, panel in zip(axes[0], panels):
        for values, line in lines:
            if tuple(values[k] for k in panel_keys) != panel:
                continue
            line = line.sort_values("_x")
            name = names[tuple(values.items())]
            x = line["_x"].to_numpy(float)
            rate_line(ax, x, line, "success", colour[name], name)
            if "control" in line and line["control"].notna().any():
                ax.plot(
                    x,
                    line["control"] * 100,
                    "--x",
                    color=colour[name],
                    alpha=0.7,
                    label=f"{name} (clean model)",
                )
        title = setting_label(kind, dict(zip(panel_keys, panel)))
        ax.set_title(wrap(title), fontsize=8)
        x_axis(ax, table["_x"].to_numpy(float), xlabel)
        ax.set_ylim(-2, 102)
        ax.legend(fontsize=6)
    axes[0][0].set_ylabel("attack success rate (%)")
    save(fig, path, dpi=REPORT_DPI)
    return True


def clean_metric_deltas(table: pd.DataFrame, path: Path) -> bool:
    """Poisoned − clean mAP and dominant accuracy (pts) per poisoning setting, one bar per model (error bar:
    sd over seeds where there are two or more)."""
    if table.empty:
        return False
    plt = pyplot()
    settings = list(dict.fromkeys(table["setting"]))
    colour = colours(table["model"])
    models = list(colour)
    width = 0.8 / max(len(models), 1)
    fig, axes = plt.subplots(1, 2, figsize=(max(7.0, 1.4 * len(settings) + 3), 3.8))
    x = np.arange(len(settings))
    for ax, metric, title in zip(axes, ("map", "dominant_acc"), ("mAP", "dominant accuracy")):
        for i, model in enumerate(models):
            sub = (
                table[table["model"] == model]
                .drop_duplicates("setting")
                .set_index("setting")
                .reindex(settings)
            )
            err = sub[f"delta_{metric}_std"].to_numpy(float) * 100
            ax.bar(
                x + (i - (len(models) - 1) / 2) * width,
                sub[f"delta_{metric}_mean"] * 100,
                width,
                yerr=None if np.all(np.isnan(err)) else np.nan_to_num(err),
                capsize=2,
                color=colour[model],
                label=model,
            )
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(x, [label.replace(" · ", "\n") for label in settings], fontsize=6)
        ax.set_title(f"Δ {title}, poisoned − clean", fontsize=9)
        ax.set_ylabel("percentage points", fontsize=8)
        ax.grid(alpha=0.3, axis="y")
    axes[0].legend(fontsize=7)
    save(fig, path, dpi=REPORT_DPI)
    return True
