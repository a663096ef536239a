"""Poisoning tables (backdoor, feature collision — and the default of any kind whose runs record counts):
the success measure per setting and model pooled over seeds, its clean-model control, what the poison
cost on clean data, and the comparison between models.

The summaries record counts, so comparisons are unpaired (Newcombe's interval, Fisher's test), except
where every run of both models left per-person outcomes (backdoor ``triggered.csv``): then paired, as
for pixel runs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from emotic_mm.attacks.registry import AttackKind
from emotic_mm.report import stats
from emotic_mm.report.tables import natural_order, ordered, pooled, seed_counts, verdict_texts, with_settings

METRICS = (
    "map",
    "dominant_acc",
)  # clean-data metrics a poisoning run measures on the clean and poisoned model


def poison_rates(kind: AttackKind, runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Per (setting, model): the success measure on the poisoned model and its clean-model control, pooled
    over seeds with Wilson intervals and per-seed spread; clean and poisoned mAP and dominant accuracy and
    their change, mean ± std over seeds."""
    df, keys = with_settings(runs, kind)
    for metric in METRICS:
        df[f"delta_{metric}"] = _delta(df, metric)
    by = [*keys, "model", "setting", "arm"]
    out = pooled(df, by, "report.successes", "report.n", "success")
    if kind.control:
        out = out.join(pooled(df, by, "report.control_successes", "report.n", "control"))
    out = out.join(seed_counts(df, by, "report.n"))
    for metric in METRICS:
        for column in (f"clean.{metric}", f"poisoned.{metric}", f"delta_{metric}"):
            values = (
                pd.to_numeric(df[column], errors="coerce")
                if column in df
                else pd.Series(np.nan, index=df.index)
            )
            agg = df.assign(_v=values).groupby(by, sort=True)["_v"].agg(["mean", "std", "count"])
            name = column.replace(".", "_")
            out[f"{name}_mean"], out[f"{name}_std"], out[f"{name}_seeds"] = (
                agg["mean"],
                agg["std"],
                agg["count"],
            )
    settings = df.groupby(by, sort=True)["settings"].first()
    out = out.join(settings).reset_index()
    return natural_order(out, [*keys, "model"]), keys


def _delta(df: pd.DataFrame, metric: str) -> pd.Series:
    """``delta_<metric>`` as recorded, else poisoned − clean (a summary without the delta still has both)."""
    delta = (
        pd.to_numeric(df[f"delta_{metric}"], errors="coerce")
        if f"delta_{metric}" in df
        else pd.Series(np.nan, index=df.index)
    )
    if f"poisoned.{metric}" in df and f"clean.{metric}" in df:
        delta = delta.fillna(
            pd.to_numeric(df[f"poisoned.{metric}"], errors="coerce")
            - pd.to_numeric(df[f"clean.{metric}"], errors="coerce")
        )
    return delta


def poison_comparisons(
    kind: AttackKind,
    table: pd.DataFrame,
    runs: pd.DataFrame | None = None,
    persons: pd.DataFrame | None = None,
    resamples: int = stats.RESAMPLES,
) -> pd.DataFrame:
    """Per setting, each pair of models A (later) vs B: A − B of the success rates and the verdict.

    Paired where every run of both models in the setting left per-person outcomes (``persons``: backdoor
    ``triggered.csv``; both variants poisoned with one seed share the poisoned rows and the triggered
    persons): matched on (seed, index), paired-bootstrap interval clustered by seed and McNemar's exact
    test, as for pixel runs. Otherwise unpaired from the pooled counts: Newcombe's interval, Fisher's p."""
    columns = [
        "kind",
        "factor",
        "setting",
        "held",
        "a",
        "b",
        "n_a",
        "n_b",
        "rate_a",
        "rate_b",
        "diff",
        "low",
        "high",
        "pvalue",
        "method",
        "verdict",
    ]
    outcomes = _outcomes_by_model(kind, runs, persons)
    rows = []
    for setting, group in table.groupby("setting", sort=False):
        by_model = group.set_index("model")
        levels = ordered("model", by_model.index)
        for i, b in enumerate(levels):
            for a in levels[i + 1 :]:
                ra, rb = by_model.loc[a], by_model.loc[b]
                lower, higher = verdict_texts("model", a, b)
                pair = outcomes.get(setting)
                if pair is not None and {a, b} <= set(pair.columns):
                    both = pair[[a, b]].dropna()
                    xa, xb = both[a].to_numpy(float), both[b].to_numpy(float)
                    seeds = both.index.get_level_values("seed").to_numpy()
                    result = stats.paired_bootstrap(xa, xb, clusters=seeds, resamples=resamples)
                    pvalue = (
                        stats.mcnemar_test(xa.astype(bool), xb.astype(bool)).pvalue if len(both) else math.nan
                    )
                    n_a = n_b = len(both)
                    rate_a, rate_b = (
                        (float(xa.mean()), float(xb.mean())) if len(both) else (math.nan, math.nan)
                    )
                    method = "paired"
                else:
                    result = stats.independent_difference(
                        ra["success_k"], ra["success_n"], rb["success_k"], rb["success_n"]
                    )
                    pvalue, n_a, n_b, rate_a, rate_b = (
                        result.pvalue,
                        ra["success_n"],
                        rb["success_n"],
                        ra["success"],
                        rb["success"],
                    )
                    method = "unpaired"
                rows.append(
                    {
                        "kind": kind.name,
                        "factor": "model",
                        "setting": setting,
                        "held": "",
                        "a": a,
                        "b": b,
                        "n_a": n_a,
                        "n_b": n_b,
                        "rate_a": rate_a,
                        "rate_b": rate_b,
                        "diff": result.diff,
                        "low": result.low,
                        "high": result.high,
                        "pvalue": pvalue,
                        "method": method,
                        "verdict": stats.verdict(result.low, result.high, pvalue, lower, higher),
                    }
                )
    return pd.DataFrame(rows, columns=columns)


def _outcomes_by_model(
    kind: AttackKind, runs: pd.DataFrame | None, persons: pd.DataFrame | None
) -> dict[str, pd.DataFrame]:
    """Per setting whose every run has per-person outcomes: a (seed, index) × model table of successes."""
    if runs is None or persons is None or persons.empty:
        return {}
    df, _ = with_settings(runs, kind)
    have = set(persons["run_dir"])
    out = {}
    for setting, group in df.groupby("setting", sort=False):
        if not set(group["run_dir"]) <= have:
            continue
        p = persons.merge(group[["run_dir", "model"]], on="run_dir")
        p = p.drop_duplicates(["seed", "index", "model"])
        out[setting] = p.set_index(["seed", "index", "model"])["success"].unstack("model")
    return out


def poison_verdicts(comparisons: pd.DataFrame) -> list[dict[str, Any]]:
    """One verdict row per model comparison of :func:`poison_comparisons`."""
    rows = []
    for _, r in comparisons.iterrows():
        n = (
            "–"
            if math.isnan(r["n_a"]) or math.isnan(r["n_b"])
            else f"{int(r['n_a'])} pairs"
            if r["method"] == "paired"
            else f"{int(r['n_a'])} vs {int(r['n_b'])}"
        )
        rows.append(
            {
                "kind": r["kind"],
                "factor": "model",
                "comparison": f"{r['a']} vs {r['b']}",
                "setting": r["setting"],
                "held": "",
                "at": "",
                "n": n,
                "seeds": None,
                "diff": r["diff"],
                "low": r["low"],
                "high": r["high"],
                "pvalue": r["pvalue"],
                "verdict": r["verdict"],
                "detected_at": [],
            }
        )
    return rows
