"""The report's figures: small matplotlib PNGs drawn through :func:`~emotic_mm.figures.pyplot` and
:func:`~emotic_mm.figures.save`, from the tables of :mod:`emotic_mm.report.tables`.

Rates are pooled over seeds and drawn with their Wilson 95 % interval as a band; percentages throughout.
A figure whose x axis would hold a single value for every line is not drawn (the table says it all).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emotic_mm.attacks.registry import ATTACKS
from emotic_mm.figures import REPORT_DPI, pyplot, save
from emotic_mm.report.tables import COMPARED, natural_key, setting_label



def _groups(df: pd.DataFrame, keys: list[str]) -> Iterator[tuple[dict[str, Any], pd.DataFrame]]:
    """``(values dict, sub-frame)`` per distinct combination of ``keys`` (one group if ``keys`` is empty)."""
    if not keys:
        yield {}, df
        return
    for values, sub in df.groupby(keys, dropna=False, sort=True):
        values = values if isinstance(values, tuple) else (values,)
        yield dict(zip(keys, values)), sub


def colours(names) -> dict[str, str]:
    """One colour per line name, the same in every figure (baseline and joint first, as in the tables)."""
    names = sorted(set(map(str, names)), key=lambda n: (not n.startswith(COMPARED), n))
    return {n: f"C{i % 10}" for i, n in enumerate(names)}


def _line(ax: Any, x: np.ndarray, line: pd.DataFrame, name: str, colour: str, label: str, style: str = "-o") -> None:
    """A rate against x with its Wilson band (percent)."""
    y = line[name].to_numpy(float) * 100
    ax.plot(x, y, style, color=colour, label=label, ms=4)
    low, high = line[f"{name}_low"].to_numpy(float) * 100, line[f"{name}_high"].to_numpy(float) * 100
    if np.all(np.isnan(low)):
        return
    if len(x) == 1:  # a band needs two x: one point gets its interval as an error bar
        ax.errorbar(x, y, yerr=[y - low, high - y], fmt="none", color=colour, capsize=3)
    else:
        ax.fill_between(x, low, high, color=colour, alpha=0.18, lw=0)


def _wrap(label: str, per_line: int = 4) -> str:
    """A setting label over several lines of ``per_line`` parts, so panel titles do not run into each other."""
    parts = label.split(" · ")
    return "\n".join(" · ".join(parts[i:i + per_line]) for i in range(0, len(parts), per_line))


def _x_axis(ax: Any, values: np.ndarray, label: str) -> None:
    values = np.unique(values[~np.isnan(values)])
    if len(values) and values.min() > 0 and values.max() / values.min() >= 10:
        ax.set_xscale("log")
    ax.set_xticks(values, [f"{v:g}" for v in values])
    ax.minorticks_off()
    ax.set_xlabel(label)
    ax.grid(alpha=0.3)


def success_vs_pixels(curve: pd.DataFrame, keys: list[str], path: Path) -> bool:
    """Success against k with Wilson bands: one panel per surface (columns) and per other setting (rows:
    algorithm, targeted, budget, …), one line per model × modality set (a one-k study gets its points and
    interval bars). False (nothing written) without data."""
    if curve.empty:
        return False
    plt = pyplot()
    row_keys = [k for k in keys if k != "surface"]
    rows = sorted((values for values, _ in _groups(curve, row_keys)),
                  key=lambda v: tuple(natural_key(x) for x in v.values()))
    surfaces = sorted(curve["surface"].unique()) if "surface" in curve else [None]
    colour = colours(curve["arm"])
    fig, axes = plt.subplots(len(rows), len(surfaces), figsize=(4.2 * len(surfaces), 3.4 * len(rows)),
                             squeeze=False)
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
                _line(ax, line["k"].to_numpy(float), line, "success", colour[arm], arm)
            ax.set_title(_wrap(setting_label(ATTACKS.get("pixel"), {**({"surface": surface} if surface else {}), **values})),
                         fontsize=7)
            _x_axis(ax, sub["k"].to_numpy(float), "pixels changed (k)")
            ax.set_ylim(-2, 102)
            ax.set_ylabel("attack success (%)", fontsize=8)
            ax.legend(fontsize=6, loc="upper left")
    fig.suptitle("Few-pixel evasion: success vs k (pooled over seeds, band = Wilson 95 %)", fontsize=9)
    save(fig, path, dpi=REPORT_DPI)
    return True


def asr_vs(table: pd.DataFrame, keys: list[str], x_key: str, path: Path, xlabel: str, scale: float = 1.0) -> bool:
    """Backdoor ASR against ``x_key`` (poison rate, trigger size) with Wilson bands, one panel per label
    variant (dirty/clean), one line per model × the other settings, dashed: the clean-model control.
    Only lines with two or more x values are drawn; False (nothing written) if there is none."""
    panel_keys = [k for k in ("variant",) if k in keys and k != x_key]
    line_keys = ["model"] + [k for k in keys if k not in (x_key, *panel_keys)]
    table = table.assign(_x=pd.to_numeric(table[x_key], errors="coerce") * scale)
    lines = [(v, sub) for v, sub in _groups(table, panel_keys + line_keys) if sub["_x"].nunique() >= 2]
    if not lines:
        return False
    plt = pyplot()
    lines.sort(key=lambda item: tuple(natural_key(v) for v in item[0].values()))
    panels = sorted({tuple(v[k] for k in panel_keys) for v, _ in lines})
    fig, axes = plt.subplots(1, len(panels), figsize=(5.0 * len(panels), 3.6), squeeze=False, sharey=True)
    names = {}
    for values, _ in lines:
        rest = {k: v for k, v in values.items() if k in line_keys and k != "model"}
        names[tuple(values.items())] = " · ".join([values["model"], *setting_label(ATTACKS.get("poison_backdoor"), rest)
                                                   .split(" · ")[1:]])
    colour = colours(names.values())
    for ax, panel in zip(axes[0], panels):
        for values, line in lines:
            if tuple(values[k] for k in panel_keys) != panel:
                continue
            line = line.sort_values("_x")
            name = names[tuple(values.items())]
            x = line["_x"].to_numpy(float)
            _line(ax, x, line, "success", colour[name], name)
            if "control" in line and line["control"].notna().any():
                ax.plot(x, line["control"] * 100, "--x", color=colour[name], alpha=0.7, label=f"{name} (clean model)")
        title = setting_label(ATTACKS.get("poison_backdoor"), dict(zip(panel_keys, panel)))
        ax.set_title(_wrap(title), fontsize=8)
        _x_axis(ax, table["_x"].to_numpy(float), xlabel)
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
            sub = table[table["model"] == model].drop_duplicates("setting").set_index("setting").reindex(settings)
            err = sub[f"delta_{metric}_std"].to_numpy(float) * 100
            ax.bar(x + (i - (len(models) - 1) / 2) * width, sub[f"delta_{metric}_mean"] * 100, width,
                   yerr=None if np.all(np.isnan(err)) else np.nan_to_num(err), capsize=2, color=colour[model],
                   label=model)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(x, [label.replace(" · ", "\n") for label in settings], fontsize=6)
        ax.set_title(f"Δ {title}, poisoned − clean", fontsize=9)
        ax.set_ylabel("percentage points", fontsize=8)
        ax.grid(alpha=0.3, axis="y")
    axes[0].legend(fontsize=7)
    save(fig, path, dpi=REPORT_DPI)
    return True


def copy_examples(runs: pd.DataFrame, root: Path, out: Path) -> list[tuple[str, str]]:
    """Copy one ``examples.png`` per (setting, model · modalities) — its lowest seed — into ``out/examples``.

    ``runs`` is :func:`~emotic_mm.report.tables.label_runs`'s table (it needs the ``setting`` and ``arm``
    labels). Returns ``(caption, relative path)`` pairs in the report's order. One per group keeps the
    report readable for sweeps of many seeds; the rest stay in their run dirs."""
    shown: list[tuple[str, str]] = []
    target = out / "examples"
    order = runs.assign(_seed=pd.to_numeric(runs["seed"], errors="coerce"),
                        _kind_order=runs["kind"].map({k: i for i, k in enumerate(ATTACKS.names())}))
    order = order.sort_values(["_kind_order", "setting", "arm", "_seed"], kind="stable")
    for (_, setting, arm), group in order.groupby(["_kind_order", "setting", "arm"], sort=False):
        for _, run in group.iterrows():
            source = root / run["run_dir"] / "examples.png"
            if source.is_file():
                target.mkdir(exist_ok=True)
                safe = re.sub(r"[^\w.-]", "_", str(arm))
                name = f"{len(shown):03d}_{safe}.png"
                shutil.copyfile(source, target / name)
                seed = "" if pd.isna(run["_seed"]) else f" · seed {int(run['_seed'])}"
                shown.append((f"{setting} · {arm}{seed}", f"examples/{name}"))
                break
    return shown
