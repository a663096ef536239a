"""The report's figures: small matplotlib PNGs (Agg backend, no display needed), drawn from the
aggregated tables of :mod:`emotic_mm.report.tables`. Error bars are the seed-to-seed std where there
are at least two seeds; percentages throughout, since every measure is a rate."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from emotic_mm.attacks.registry import ATTACKS
from emotic_mm.report.figures import pyplot, save
from emotic_mm.report.tables import setting_label

DPI = 90


def _groups(df: pd.DataFrame, keys: list[str]):
    """``(values dict, sub-frame)`` per distinct combination of ``keys`` (one group if ``keys`` is empty)."""
    if not keys:
        yield {}, df
        return
    for values, sub in df.groupby(keys, dropna=False, sort=True):
        values = values if isinstance(values, tuple) else (values,)
        yield dict(zip(keys, values)), sub


def model_colours(models) -> dict[str, str]:
    """One colour per model, the same in every figure (baseline and joint first, as in the tables)."""
    ordered = [m for m in ("baseline", "joint") if m in set(models)] + sorted(set(models) - {"baseline", "joint"})
    return {m: f"C{i % 10}" for i, m in enumerate(ordered)}


def _err(std: pd.Series) -> np.ndarray | None:
    std = std.to_numpy(dtype=float) * 100
    return None if np.all(np.isnan(std)) else np.nan_to_num(std)


def success_vs_pixels(table: pd.DataFrame, keys: list[str], path: Path) -> None:
    """Success rate against k: one panel per (algorithm, targeted, …), one line per model × surface."""
    plt = pyplot()
    panel_keys = [k for k in keys if k not in ("pixels", "surface")]
    panels = list(_groups(table, panel_keys))
    colours = model_colours(table["model"])
    styles = {s: ("-o", "--s", ":^", "-.D")[i % 4] for i, s in enumerate(sorted(table["surface"].astype(str).unique()))}
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), squeeze=False, sharey=True)
    for ax, (values, sub) in zip(axes[0], panels):
        for (model, surface), line in sub.groupby(["model", "surface"], sort=True):
            line = line.sort_values("pixels")
            ax.errorbar(line["pixels"], line["mean"] * 100, yerr=_err(line["std"]), fmt=styles[str(surface)],
                        color=colours[model], capsize=3, label=f"{model} · {surface}")
        ax.set_title(setting_label(ATTACKS.get("pixel"), values), fontsize=8)
        ax.set_xlabel("pixels changed (k)")
        ax.set_xticks(sorted(sub["pixels"].dropna().unique()))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("success rate (%)")
    axes[0][-1].legend(fontsize=7)
    save(fig, path, dpi=DPI)


def asr_vs_rate(table: pd.DataFrame, keys: list[str], path: Path) -> None:
    """Backdoor ASR against the poison rate, one line per model (× trigger setting); dashed: clean-model control."""
    plt = pyplot()
    line_keys = ["model"] + [k for k in keys if k != "rate"]
    fig, ax = plt.subplots(figsize=(5, 3.4))
    colours = model_colours(table["model"])
    for values, line in _groups(table, line_keys):
        line = line.sort_values("rate")
        x = line["rate"].to_numpy(dtype=float) * 100
        label = setting_label(ATTACKS.get("poison_backdoor"), {k: v for k, v in values.items() if k != "model"})
        label = f"{values['model']} · {label.split(' · ', 1)[-1]}" if len(values) > 1 else values["model"]
        colour = colours[values["model"]]
        ax.errorbar(x, line["mean"] * 100, yerr=_err(line["std"]), marker="o", capsize=3, color=colour, label=label)
        if line["control_mean"].notna().any():
            ax.plot(x, line["control_mean"] * 100, ls="--", marker="x", color=colour, alpha=0.7,
                    label=f"{label} (clean model)")
    ax.set_xlabel("poisoned training persons (%)")
    ax.set_ylabel("attack success rate (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    save(fig, path, dpi=DPI)


def clean_metric_deltas(table: pd.DataFrame, path: Path) -> None:
    """Poisoned − clean mAP and dominant accuracy (pts) per poisoning setting, one bar per model."""
    plt = pyplot()
    settings = list(dict.fromkeys(table["setting"]))
    colours = model_colours(table["model"])
    models = list(colours)
    width = 0.8 / max(len(models), 1)
    fig, axes = plt.subplots(1, 2, figsize=(max(7.0, 1.4 * len(settings) + 3), 3.8))
    x = np.arange(len(settings))
    for ax, metric, title in zip(axes, ("map", "dominant_acc"), ("mAP", "dominant accuracy")):
        for i, model in enumerate(models):
            sub = table[table["model"] == model].set_index("setting").reindex(settings)
            ax.bar(x + (i - (len(models) - 1) / 2) * width, sub[f"delta_{metric}_mean"] * 100, width,
                   yerr=_err(sub[f"delta_{metric}_std"]), capsize=2, color=colours[model], label=model)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(x, [label.replace(" · ", "\n") for label in settings], fontsize=6)
        ax.set_title(f"Δ {title}, poisoned − clean", fontsize=9)
        ax.set_ylabel("percentage points", fontsize=8)
        ax.grid(alpha=0.3, axis="y")
    axes[0].legend(fontsize=7)
    save(fig, path, dpi=DPI)


def copy_examples(runs: pd.DataFrame, root: Path, out: Path) -> list[tuple[str, str]]:
    """Copy one ``examples.png`` per (setting, model) — its lowest seed — into ``out/examples``.

    ``runs`` is :func:`~emotic_mm.report.tables.label_runs`'s table (it needs the ``setting`` label).

    Returns ``(caption, relative path)`` pairs in the report's order. One per group keeps the report
    readable for sweeps of many seeds; the rest stay in their run dirs.
    """
    shown: list[tuple[str, str]] = []
    target = out / "examples"
    order = runs.assign(_seed=pd.to_numeric(runs["seed"], errors="coerce"),
                        _kind_order=runs["kind"].map({k: i for i, k in enumerate(ATTACKS.names())}))
    order = order.sort_values(["_kind_order", "setting", "model", "_seed"], kind="stable")
    for (_, setting, model), group in order.groupby(["_kind_order", "setting", "model"], sort=False):
        for _, run in group.iterrows():
            source = root / run["run_dir"] / "examples.png"
            if source.is_file():
                target.mkdir(exist_ok=True)
                safe = re.sub(r"[^\w.-]", "_", str(model))
                name = f"{len(shown):03d}_{safe}.png"
                shutil.copyfile(source, target / name)
                seed = "" if pd.isna(run["_seed"]) else f" · seed {int(run['_seed'])}"
                shown.append((f"{setting} · {model}{seed}", f"examples/{name}"))
                break
    return shown
