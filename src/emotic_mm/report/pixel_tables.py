"""Pixel-evasion tables: the success curve over the pixel budget k, the RobustBench-style line per arm,
and the paired comparisons of arms attacked on the same persons.

Pixel comparisons are paired: the same persons (``index``) under the same seed, matched in ``attack.csv``;
the difference A − B of success rates gets a paired-bootstrap interval (persons resampled within seed)
and McNemar's exact test.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from emotic_mm.attacks.registry import AttackKind
from emotic_mm.measures import median_needed, one_answer
from emotic_mm.report import stats
from emotic_mm.report.tables import (
    arm_keys,
    arm_label,
    natural_key,
    natural_order,
    ordered,
    pooled,
    seed_counts,
    setting_label,
    verdict_texts,
    with_settings,
)

log = logging.getLogger(__name__)


def pixel_runs(kind: AttackKind, runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str], list[str]]:
    """The runs of ``kind`` with labels, their setting keys and their arm keys."""
    df, keys = with_settings(runs, kind)
    return df, keys, arm_keys(kind, keys)


def pixel_curve(
    kind: AttackKind, runs: pd.DataFrame, points: pd.DataFrame, persons: pd.DataFrame
) -> tuple[pd.DataFrame, list[str]]:
    """One row per (setting, arm, k): success over all persons and over the clean-correct ones, robust
    dominant accuracy and clean dominant accuracy — each pooled over seeds with its Wilson interval and the
    per-seed mean ± std — the seeds and n per seed, and mean/median queries to success (pooled over the
    persons of ``attack.csv``; the mean of the runs' values where a run has none)."""
    df, keys, arms = pixel_runs(kind, runs)
    cols = ["run_dir", "seed", "setting", "arm", *keys, *arms]
    pts = points.merge(df[cols], on="run_dir")
    by = [*keys, *arms, "setting", "arm", "k"]
    out = pooled(pts, by, "successes", "persons", "success")
    out = out.join(pooled(pts, by, "successes_correct", "persons_correct", "success_correct"))
    out = out.join(pooled(pts, by, "robust_correct", "persons", "robust"))
    out = out.join(pooled(pts, by, "persons_correct", "persons", "clean"))
    out = out.join(seed_counts(pts, by, "persons"))
    from_runs = pts.groupby(by, sort=True)[["mean_queries", "median_queries"]].mean()
    out = out.join(from_runs)
    complete = _runs_with_persons(pts, persons, by)
    if not persons.empty:
        p = persons.merge(df[cols], on=["run_dir", "seed"])
        fooled = p[p["success"] == 1]
        q = fooled.groupby(by, sort=True)["queries"].agg(["mean", "median"])
        q = q[q.index.isin(complete)]
        out.loc[q.index, "mean_queries"] = q["mean"]
        out.loc[q.index, "median_queries"] = q["median"]
    out = out.reset_index()
    needed = _pixels_needed(df, keys, arms, persons)
    out = out.merge(needed, on=[*keys, *arms], how="left")
    return natural_order(out, [*keys, *arms, "k"]), keys


def _runs_with_persons(pts: pd.DataFrame, persons: pd.DataFrame, by: list[str]) -> set:
    """The groups every run of which has an ``attack.csv`` (only those take their medians from persons)."""
    have = set(persons["run_dir"]) if not persons.empty else set()
    flag = pts.assign(_has=pts["run_dir"].isin(have)).groupby(by, sort=True)["_has"].all()
    return set(flag[flag].index)


def _pixels_needed(df: pd.DataFrame, keys: list[str], arms: list[str], persons: pd.DataFrame) -> pd.DataFrame:
    """Per (setting, arm): the median pixels needed over all persons and over the clean-correct ones,
    pooled over the seeds' ``attack.csv`` (else the median of the runs' recorded medians), and the largest
    k every run tried (the censoring point: "needs more than k")."""
    rows = []
    have = set(persons["run_dir"]) if not persons.empty else set()
    for values, group in df.groupby([*keys, *arms], sort=True):
        largest = []
        for _, run in group.iterrows():
            pixels = str(run.get("pixels", ""))
            largest.append(
                max(int(float(k)) for k in pixels.split(";")) if pixels not in ("", "nan") else math.nan
            )
        censor = float(np.nanmin(largest)) if not all(math.isnan(v) for v in largest) else math.nan
        if set(group["run_dir"]) <= have and len(group):
            mine = persons[persons["run_dir"].isin(set(group["run_dir"]))].drop_duplicates(
                ["run_dir", "index"]
            )
            needed_all = median_needed(mine["pixels_needed"].to_numpy(float), censor)
            needed_correct = median_needed(
                mine.loc[mine["correct"] == 1, "pixels_needed"].to_numpy(float), censor
            )
            source = "persons"
        else:
            # a run with a curve records null for "more than the largest k"; a run without one has no such key
            newer = group[group["curve"].notna()] if "curve" in group else group.iloc[:0]

            def recorded(newer: pd.DataFrame, key: str) -> float:
                if key not in newer or newer.empty:
                    return math.nan
                vals = pd.to_numeric(newer[key], errors="coerce").fillna(np.inf).to_numpy(float)
                return float(np.median(vals))

            needed_all, needed_correct = (
                recorded(newer, "median_pixels_needed_all"),
                recorded(newer, "median_pixels_needed_correct"),
            )
            source = "runs"
        rows.append(
            {
                **dict(zip([*keys, *arms], values)),
                "median_pixels_needed_all": needed_all,
                "median_pixels_needed_correct": needed_correct,
                "largest_k": censor,
                "needed_from": source,
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            *keys,
            *arms,
            "median_pixels_needed_all",
            "median_pixels_needed_correct",
            "largest_k",
            "needed_from",
        ],
    )


def clean_map(runs: pd.DataFrame) -> pd.Series:
    """The clean model's test mAP per pixel run: ``clean_map`` (or ``clean.map``) if the run recorded it,
    else the ``clean.map`` a poisoning run measured on the same clean checkpoint (same weights, same
    test split; poisoning runs record ``checkpoint_clean``); NaN otherwise. Indexed like ``runs``."""
    values = pd.Series(np.nan, index=runs.index, dtype=float)
    for key in ("clean_map", "clean.map"):
        if key in runs:
            values = values.fillna(pd.to_numeric(runs[key], errors="coerce"))
    if (
        "checkpoint" in runs and "checkpoint_clean" in runs and "clean.map" in runs
    ):  # runs without one: NaN, not grouped
        by_checkpoint = (
            pd.to_numeric(runs["clean.map"], errors="coerce").groupby(runs["checkpoint_clean"]).mean()
        )
        values = values.fillna(runs["checkpoint"].map(by_checkpoint))
    return values


def pixel_arms(kind: AttackKind, runs: pd.DataFrame, curve: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per (setting, arm): the RobustBench-style line — clean mAP (mean ± std over seeds), clean
    dominant accuracy (pooled, Wilson), and the largest-k medians; the per-k robust accuracy stays in
    ``curve``."""
    df, _, arms = pixel_runs(kind, runs)
    df = df.assign(clean_map=clean_map(runs).loc[df.index])
    maps = (
        df.groupby([*keys, *arms], sort=True)["clean_map"]
        .agg(clean_map_mean="mean", clean_map_std="std", clean_map_seeds="count")
        .reset_index()
    )
    first = curve.drop_duplicates([*keys, *arms])  # the curve is sorted by k within each arm: its smallest k
    cols = [
        *keys,
        *arms,
        "setting",
        "arm",
        "clean",
        "clean_low",
        "clean_high",
        "clean_k",
        "clean_n",
        "clean_seed_mean",
        "clean_seed_std",
        "clean_seeds",
        "seeds",
        "n_by_seed",
        "median_pixels_needed_all",
        "median_pixels_needed_correct",
        "largest_k",
        "needed_from",
    ]
    return first[cols].merge(maps, on=[*keys, *arms], how="left").reset_index(drop=True)


def paired_comparisons(
    kind: AttackKind, runs: pd.DataFrame, persons: pd.DataFrame, resamples: int = stats.RESAMPLES
) -> pd.DataFrame:
    """Every paired comparison of the pixel runs: for each compared key (model, modality set, algorithm),
    each setting and k with the other keys held equal, each pair of its values A (later in
    :func:`ordered`) vs B: the success rates over the persons attacked under both (matched on seed and
    index), A − B with its paired-bootstrap interval (clustered by seed), McNemar's p, the per-seed
    differences and the verdict."""
    columns = [
        "factor",
        "setting",
        "held",
        "k",
        "a",
        "b",
        "n",
        "seeds",
        "n_by_seed",
        "rate_a",
        "rate_b",
        "diff",
        "low",
        "high",
        "only_a",
        "only_b",
        "pvalue",
        "exact",
        "seed_diffs",
        "verdict",
    ]
    if persons.empty or runs.empty or not (runs["kind"] == kind.name).any():
        return pd.DataFrame(columns=columns)
    df, keys, arms = pixel_runs(kind, runs)
    p = persons.merge(df[["run_dir", *keys, *arms]], on="run_dir")
    ident = [*keys, *arms, "k", "seed", "index"]
    duplicated = p.duplicated(ident)
    if duplicated.any():
        log.warning(
            "%d person outcomes appear in more than one run of the same setting and seed; "
            "the first run's are used",
            int(duplicated.sum()),
        )
        p = p[~duplicated]
    rows = []
    for factor in kind.compared:
        held = [c for c in (*keys, *arms) if c != factor]
        # one row per (held keys, k, seed, person), one column per level of the factor
        table = p.set_index([*held, "k", "seed", "index", factor])["success"].unstack(factor)
        answers = p.set_index([*held, "k", "seed", "index", factor])["clean_top1"].unstack(factor)
        groups = sorted(
            table.groupby(level=[*held, "k"], sort=False), key=lambda item: tuple(map(natural_key, item[0]))
        )
        for values, wide in groups:
            levels = ordered(factor, [c for c in wide.columns if wide[c].notna().any()])
            if len(levels) < 2:
                continue
            context = dict(zip(held, values[:-1]))
            for i, b in enumerate(levels):
                for a in levels[i + 1 :]:
                    pair = wide[[a, b]].dropna()
                    rows.append(
                        _paired_row(
                            kind,
                            factor,
                            keys,
                            arms,
                            context,
                            int(values[-1]),
                            a,
                            b,
                            pair,
                            resamples,
                            answers.loc[pair.index, [a, b]],
                        )
                    )
    return pd.DataFrame(rows, columns=columns)


def _paired_row(
    kind: AttackKind,
    factor: str,
    keys: list[str],
    arms: list[str],
    context: dict[str, str],
    k: int,
    a: str,
    b: str,
    pair: pd.DataFrame,
    resamples: int,
    answers: pd.DataFrame | None = None,
) -> dict[str, Any]:
    seeds = pair.index.get_level_values("seed").to_numpy()
    xa, xb = pair[a].to_numpy(float), pair[b].to_numpy(float)
    interval = stats.paired_bootstrap(xa, xb, clusters=seeds, resamples=resamples)
    test = stats.mcnemar_test(xa.astype(bool), xb.astype(bool))
    lower, higher = verdict_texts(factor, a, b)
    per_seed = pd.Series(xa - xb).groupby(seeds)
    return {
        "factor": factor,
        "setting": setting_label(kind, {key: context[key] for key in keys if key in context}),
        "held": arm_label({key: context[key] for key in arms if key in context}),
        "k": k,
        "a": a,
        "b": b,
        "n": int(len(pair)),
        "seeds": sorted(int(s) for s in set(seeds)),
        "n_by_seed": {int(s): int(c) for s, c in per_seed.size().items()},
        "rate_a": float(xa.mean()) if len(pair) else math.nan,
        "rate_b": float(xb.mean()) if len(pair) else math.nan,
        "diff": interval.diff,
        "low": interval.low,
        "high": interval.high,
        "only_a": test.only_a,
        "only_b": test.only_b,
        "pvalue": test.pvalue if len(pair) else math.nan,
        "seed_diffs": {int(s): float(v) for s, v in per_seed.mean().items()},
        "verdict": _comparable(a, b, answers)
        or (
            stats.verdict(interval.low, interval.high, test.pvalue, lower, higher)
            if len(pair)
            else "no pairs (no person attacked under both)"
        ),
    }


def _comparable(a: str, b: str, answers: pd.DataFrame | None) -> str | None:
    """The verdict when either arm's clean model answers (nearly) everyone alike (:func:`one_answer`)."""
    if answers is None or answers.empty:
        return None
    why = [
        f"{level}'s clean model answers {text}" for level in (a, b) if (text := one_answer(answers[level]))
    ]
    return f"not comparable: {'; '.join(why)}" if why else None


def pixel_verdicts(kind: AttackKind, paired: pd.DataFrame) -> list[dict[str, Any]]:
    """One verdict row per comparison over all k: the difference at the largest k with its interval, the
    verdict there, and every k at which a difference was detected."""
    rows = []
    if paired.empty:
        return rows
    for (factor, setting, held, a, b), group in paired.groupby(
        ["factor", "setting", "held", "a", "b"], sort=False
    ):
        group = group.sort_values("k")
        last = group.iloc[-1]
        detected = group[
            group["verdict"].map(lambda v: v.endswith("more robust") or v.endswith("finds more"))
        ]
        rows.append(
            {
                "kind": kind.name,
                "factor": factor,
                "comparison": f"{a} vs {b}",
                "setting": setting,
                "held": held,
                "at": f"k={int(last['k'])}",
                "n": f"{int(last['n'])} pairs",
                "seeds": last["seeds"],
                "diff": last["diff"],
                "low": last["low"],
                "high": last["high"],
                "pvalue": last["pvalue"],
                "verdict": last["verdict"],
                "detected_at": [{"k": int(r["k"]), "verdict": r["verdict"]} for _, r in detected.iterrows()],
            }
        )
    return rows
