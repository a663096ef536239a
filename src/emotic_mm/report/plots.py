"""What the report's figures share: one colour per line, a rate drawn with its Wilson band, axes and
titles; and the example pictures copied from the run dirs. The kinds' own figures
(:mod:`~emotic_mm.report.pixel_plots`, :mod:`~emotic_mm.report.poison_plots`) are small matplotlib PNGs
drawn through :func:`~emotic_mm.figures.pyplot` and :func:`~emotic_mm.figures.save`.

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
from emotic_mm.report.tables import COMPARED


def groups(df: pd.DataFrame, keys: list[str]) -> Iterator[tuple[dict[str, Any], pd.DataFrame]]:
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


def rate_line(
    ax: Any, x: np.ndarray, line: pd.DataFrame, name: str, colour: str, label: str, style: str = "-o"
) -> None:
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


def wrap(label: str, per_line: int = 4) -> str:
    """A setting label over several lines of ``per_line`` parts, so panel titles do not run into each
    other."""
    parts = label.split(" · ")
    return "\n".join(" · ".join(parts[i : i + per_line]) for i in range(0, len(parts), per_line))


def x_axis(ax: Any, values: np.ndarray, label: str) -> None:
    """Ticks at the values drawn (log scale over a decade or more), the label, a light grid."""
    values = np.unique(values[~np.isnan(values)])
    if len(values) and values.min() > 0 and values.max() / values.min() >= 10:
        ax.set_xscale("log")
    ax.set_xticks(values, [f"{v:g}" for v in values])
    ax.minorticks_off()
    ax.set_xlabel(label)
    ax.grid(alpha=0.3)


def copy_examples(runs: pd.DataFrame, root: Path, out: Path) -> list[tuple[str, str]]:
    """Copy one ``examples.png`` per (setting, model · modalities) — its lowest seed — into ``out/examples``.

    ``runs`` is :func:`~emotic_mm.report.tables.label_runs`'s table (it needs the ``setting`` and ``arm``
    labels). Returns ``(caption, relative path)`` pairs in the report's order. One per group keeps the
    report readable for sweeps of many seeds; the rest stay in their run dirs."""
    shown: list[tuple[str, str]] = []
    target = out / "examples"
    order = runs.assign(
        _seed=pd.to_numeric(runs["seed"], errors="coerce"),
        _kind_order=runs["kind"].map({k: i for i, k in enumerate(ATTACKS.names())}),
    )
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
