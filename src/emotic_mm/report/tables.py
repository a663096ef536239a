"""Aggregate runs across seeds: settings, mean ± std per model, and the baseline-vs-joint verdict.

All measures are success rates of an attacker (fractions 0–1): lower means more robust. Differences are
``joint − baseline``; a verdict calls a tie when the difference is no larger than the larger seed-to-seed
standard deviation (sample std, ddof=1), because a gap inside the noise says nothing about robustness.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from emotic_mm.attacks.registry import ATTACKS, AttackKind

COMPARED = ("baseline", "joint")
ONE_SEED_NOTE = "1 seed: no spread; rerun with seed=0,1,2"
METRICS = ("map", "dominant_acc")


# --------------------------------------------------------------------------- settings
def setting_keys(runs: pd.DataFrame, kind: AttackKind) -> list[str]:
    """The kind's primary keys plus the secondary keys whose value differs between its runs."""
    varying = [k for k in kind.secondary if k in runs and runs[k].astype(str).nunique(dropna=False) > 1]
    return list(kind.primary) + varying


def _value_text(key: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"{key}=n/a"
    if key == "pixels":
        return f"k={int(value)}" if float(value).is_integer() else f"k={value}"
    if key == "targeted":
        return "targeted" if value in (True, "True", "true", 1) else "untargeted"
    if key == "variant":
        return f"{value}-label"
    if key in ("algorithm", "surface"):
        return str(value)
    if isinstance(value, float):
        return f"{key}={value:g}"
    return f"{key}={value}"


def setting_label(kind: AttackKind, values: dict[str, Any]) -> str:
    """A short readable name of one setting, e.g. ``pixel · de · k=3 · context · untargeted``."""
    return " · ".join([kind.short, *(_value_text(k, v) for k, v in values.items())])


def with_settings(runs: pd.DataFrame, kind: AttackKind) -> tuple[pd.DataFrame, list[str]]:
    """The runs of ``kind`` with every setting key present (NaN if no run has it) and a ``setting`` label."""
    df = runs[runs["kind"] == kind.name].copy()
    keys = setting_keys(df, kind)
    for key in keys:
        if key not in df:
            df[key] = np.nan
        elif df[key].dtype == object:
            df[key] = df[key].where(df[key].notna(), "n/a")
    df["setting"] = [setting_label(kind, dict(zip(keys, row))) for row in df[keys].itertuples(index=False)]
    return df, keys


def label_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Every run with its ``setting`` label (as in the summary table), in :data:`~emotic_mm.attacks.registry.ATTACKS` order."""
    parts = []
    for kind in ATTACKS:
        if not runs.empty and (runs["kind"] == kind.name).any():
            df, _ = with_settings(runs, kind)
            parts.append(runs.loc[df.index].assign(setting=df["setting"]))
    if not parts:
        return runs.assign(setting=pd.Series(dtype=object))
    out = pd.concat(parts)
    front = ["run_dir", "kind", "setting", "model", "seed"]
    return out[front + [c for c in out.columns if c not in front]]


# --------------------------------------------------------------------------- statistics
def seed_stats(df: pd.DataFrame, by: list[str], column: str) -> pd.DataFrame:
    """Mean, sample std and count (non-null runs) of ``column`` per group of ``by``."""
    values = pd.to_numeric(df[column], errors="coerce") if column in df else pd.Series(np.nan, index=df.index)
    grouped = df.assign(_v=values).groupby(by, dropna=False, sort=True)["_v"]
    return grouped.agg(mean="mean", std="std", n="count").reset_index()


def verdict(baseline: tuple[float, float, int], joint: tuple[float, float, int]) -> tuple[float, str]:
    """``(joint − baseline, verdict text)`` from ``(mean, std, n)`` of each variant's success rate."""
    (b_mean, b_std, b_n), (j_mean, j_std, j_n) = baseline, joint
    if not b_n or not j_n or math.isnan(b_mean) or math.isnan(j_mean):
        return math.nan, ("only joint measured" if j_n else "only baseline measured")
    diff = j_mean - b_mean
    spreads = [s for s, n in ((b_std, b_n), (j_std, j_n)) if n >= 2 and not math.isnan(s)]
    spread = max(spreads, default=0.0)
    if abs(diff) <= spread + 1e-12 or round(abs(diff) * 100, 1) == 0:
        text = "tie (within spread)"
    elif diff < 0:
        text = f"joint more robust by {abs(diff) * 100:.1f} pts"
    else:
        text = f"baseline more robust by {diff * 100:.1f} pts"
    if min(b_n, j_n) < 2:
        text += f" ({ONE_SEED_NOTE})"
    return diff, text


def _triple(row: pd.Series, model: str) -> tuple[float, float, int]:
    n = row.get(f"{model}_n")
    n = 0 if n is None or (isinstance(n, float) and math.isnan(n)) else int(n)
    return float(row.get(f"{model}_mean", math.nan)), float(row.get(f"{model}_std", math.nan)), n


def aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    """The summary: one row per (kind, setting); per model ``<model>_mean/_std/_n`` of the kind's measure;
    ``diff`` = joint − baseline and ``verdict``. Kinds appear in :data:`~emotic_mm.attacks.registry.ATTACKS` order, settings sorted."""
    rows: list[pd.DataFrame] = []
    for kind in ATTACKS:
        if runs.empty or not (runs["kind"] == kind.name).any():
            continue
        df, keys = with_settings(runs, kind)
        stats = seed_stats(df, keys + ["setting", "model"], kind.measure)
        wide = stats[keys + ["setting"]].drop_duplicates("setting").reset_index(drop=True)
        for model in stats["model"].drop_duplicates():
            mine = stats.loc[stats["model"] == model, ["setting", "mean", "std", "n"]]
            wide = wide.merge(mine.rename(columns={c: f"{model}_{c}" for c in ("mean", "std", "n")}),
                              on="setting", how="left")
        wide.insert(0, "kind", kind.name)
        wide.insert(1, "measure", kind.measure)
        wide["settings"] = [dict(zip(keys, r)) for r in wide[keys].itertuples(index=False)]
        rows.append(wide.drop(columns=keys))
    if not rows:
        return pd.DataFrame(columns=["kind", "measure", "setting", "settings", "diff", "verdict"])
    out = pd.concat(rows, ignore_index=True)
    for model in COMPARED:
        for stat in ("mean", "std", "n"):
            if f"{model}_{stat}" not in out:
                out[f"{model}_{stat}"] = np.nan
    results = [verdict(_triple(r, "baseline"), _triple(r, "joint")) for _, r in out.iterrows()]
    out["diff"] = [d for d, _ in results]
    out["verdict"] = [v for _, v in results]
    return out


def models_in(runs: pd.DataFrame) -> list[str]:
    """Model names, baseline and joint first (the comparison), then any others alphabetically."""
    found = set(runs["model"].astype(str)) if not runs.empty else set()
    return [m for m in COMPARED if m in found] + sorted(found - set(COMPARED))


# --------------------------------------------------------------------------- per-kind tables
def pixel_table(runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Success rate and median queries per setting and model, across seeds (long form), and the setting keys."""
    kind = ATTACKS.get("pixel")
    df, keys = with_settings(runs, kind)
    by = keys + ["model"]
    out = seed_stats(df, by, kind.measure)
    out["correct_mean"] = seed_stats(df, by, "success_rate_correct")["mean"]
    out["median_queries"] = seed_stats(df, by, "median_queries_success")["mean"]
    out = out.sort_values([k for k in keys if k != "pixels"] + ["model", "pixels"], kind="stable")
    return out.reset_index(drop=True), keys


def _delta(df: pd.DataFrame, metric: str) -> pd.Series:
    """``delta_<metric>`` as recorded, else poisoned − clean (a summary without the delta still has both)."""
    delta = pd.to_numeric(df[f"delta_{metric}"], errors="coerce") if f"delta_{metric}" in df else \
        pd.Series(np.nan, index=df.index)
    if f"poisoned.{metric}" in df and f"clean.{metric}" in df:
        delta = delta.fillna(pd.to_numeric(df[f"poisoned.{metric}"], errors="coerce")
                             - pd.to_numeric(df[f"clean.{metric}"], errors="coerce"))
    return delta


def poison_table(runs: pd.DataFrame, kind_name: str) -> tuple[pd.DataFrame, list[str]]:
    """Success measure (poisoned model), its clean-model control and clean-metric deltas per setting and
    model, across seeds; and the setting keys."""
    kind = ATTACKS.get(kind_name)
    df, keys = with_settings(runs, kind)
    for metric in METRICS:
        df[f"delta_{metric}"] = _delta(df, metric)
    by = keys + ["setting", "model"]
    out = seed_stats(df, by, kind.measure)
    out["control_mean"] = seed_stats(df, by, kind.control)["mean"] if kind.control else float("nan")
    for metric in METRICS:
        for side in ("clean", "poisoned"):
            out[f"{side}_{metric}"] = seed_stats(df, by, f"{side}.{metric}")["mean"]
        delta = seed_stats(df, by, f"delta_{metric}")
        out[f"delta_{metric}_mean"] = delta["mean"]
        out[f"delta_{metric}_std"] = delta["std"]
    return out.reset_index(drop=True), keys
