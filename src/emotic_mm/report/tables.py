"""Aggregate runs into the report's tables: pooled rates with intervals, per-seed spread, paired and
unpaired comparisons with verdicts.

Every measure is a rate of an attacker's success (fraction 0–1; lower = more robust), or an accuracy.
Runs are grouped by *setting* (every key that defines the experiment, :func:`setting_keys`) and *arm*
(the things compared on the same persons: model, and for pixel attacks the modality set); runs of a group
differ only in their seed.

* Rates pool the persons of all seeds (n = persons × seeds) with a Wilson interval; the mean ± std of the
  per-seed rates sits beside them, since the pooled interval covers person sampling, not model seeds.
* Pixel comparisons are paired: the same persons (``index``) under the same seed, matched in
  ``attack.csv``; the difference A − B of success rates gets a paired-bootstrap interval (persons
  resampled within seed) and McNemar's exact test.
* Poisoning comparisons are unpaired (the summaries record counts): Newcombe's interval, Fisher's test.
* :func:`~emotic_mm.report.stats.verdict` turns each difference into "A more robust", "B more robust" or
  "no difference detected at this n".
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from emotic_mm.attacks.registry import ATTACKS, AttackKind
from emotic_mm.measures import median_needed, one_answer
from emotic_mm.report import stats

log = logging.getLogger(__name__)

COMPARED = ("baseline", "joint")  # the variants the study is about, first in every table
ATTACKER_KEYS = ("algorithm",)    # compared keys that choose the attacker: a higher success rate is theirs
METRICS = ("map", "dominant_acc")
MISSING_TEXT = "n/a"


# --------------------------------------------------------------------------- settings and arms
def setting_keys(runs: pd.DataFrame, kind: AttackKind) -> list[str]:
    """The kind's primary keys plus the secondary keys whose value differs between its runs."""
    varying = [k for k in kind.secondary if k in runs and runs[k].map(canonical).nunique() > 1]
    return list(kind.primary) + varying


def arm_keys(kind: AttackKind, keys: Iterable[str]) -> list[str]:
    """The compared keys that are not setting keys: what one line of a figure or row of a table is."""
    return [k for k in kind.compared if k not in set(keys)]


def canonical(value: Any) -> str:
    """A setting value as text, the same for ``3``, ``3.0`` and ``"3"`` read from different runs, so that
    grouping never splits a setting over a type and never drops a missing value (``n/a``)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING_TEXT
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return str(int(value)) if float(value).is_integer() else f"{float(value):g}"
    return str(value)


def natural_key(value: Any) -> tuple[int, float, str]:
    """Sort key of a canonical setting value: numbers in numeric order (2 before 10), then text."""
    try:
        return 0, float(value), ""
    except (TypeError, ValueError):
        return 1, 0.0, str(value)


def natural_order(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``df`` sorted (stably) by ``columns`` in :func:`natural_key` order, the index reset."""
    columns = [c for c in columns if c in df]
    if df.empty or not columns:
        return df.reset_index(drop=True)
    return df.sort_values(columns, key=lambda s: s.map(natural_key), kind="stable").reset_index(drop=True)


def _value_text(key: str, value: str) -> str:
    if value == MISSING_TEXT:
        return f"{key}=n/a"
    if key == "pixels":
        return f"{value} px"
    if key == "targeted":
        return "targeted" if value == "True" else "untargeted"
    if key == "variant":
        return f"{value}-label"
    if key in ("algorithm", "surface"):
        return value
    return f"{key}={value}"


def setting_label(kind: AttackKind, values: dict[str, Any]) -> str:
    """A short readable name of one setting, e.g. ``pixel · de · context · untargeted · budget=400 · …``
    (an untargeted attack's absent target is left out: ``untargeted`` already says it)."""
    shown = {k: canonical(v) for k, v in values.items() if not (k == "target" and canonical(v) == MISSING_TEXT)}
    return " · ".join([kind.short, *(_value_text(k, v) for k, v in shown.items())])


def arm_label(values: dict[str, Any]) -> str:
    """``joint · context+body+text`` (the modality set left out where the runs do not record it)."""
    return " · ".join(canonical(v) for k, v in values.items() if not (k == "modalities" and canonical(v) == MISSING_TEXT))


def with_settings(runs: pd.DataFrame, kind: AttackKind) -> tuple[pd.DataFrame, list[str]]:
    """The runs of ``kind`` with every setting and arm key as :func:`canonical` text, a ``settings`` dict of
    the recorded values, and the ``setting`` and ``arm`` labels; and the setting keys."""
    df = runs[runs["kind"] == kind.name].copy()
    keys = setting_keys(df, kind)
    arms = arm_keys(kind, keys)
    for key in keys + arms:
        if key not in df:
            df[key] = None
    df["settings"] = [dict(zip(keys, (None if isinstance(v, float) and math.isnan(v) else v for v in row)))
                      for row in df[keys].itertuples(index=False)]
    for key in keys + arms:
        df[key] = df[key].map(canonical)
    df["setting"] = [setting_label(kind, dict(zip(keys, row))) for row in df[keys].itertuples(index=False)]
    df["arm"] = [arm_label(dict(zip(arms, row))) for row in df[arms].itertuples(index=False)]
    return df, keys


def label_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Every run with its ``setting`` and ``arm`` labels, in :data:`~emotic_mm.attacks.registry.ATTACKS` order."""
    parts = []
    for kind in ATTACKS:
        if not runs.empty and (runs["kind"] == kind.name).any():
            df, _ = with_settings(runs, kind)
            parts.append(runs.loc[df.index].assign(setting=df["setting"], arm=df["arm"]))
    if not parts:
        return runs.assign(setting=pd.Series(dtype=object), arm=pd.Series(dtype=object))
    out = pd.concat(parts)
    front = ["run_dir", "kind", "setting", "arm", "model", "seed"]
    return out[front + [c for c in out.columns if c not in front]]


def models_in(runs: pd.DataFrame) -> list[str]:
    """Model names, baseline and joint first (the comparison), then any others alphabetically."""
    return ordered("model", runs["model"].astype(str)) if not runs.empty else []


def ordered(key: str, values: Iterable[str]) -> list[str]:
    """The levels of a compared key in the order comparisons read "later vs earlier": baseline before
    joint, fewer modalities before more (image-only before fused), otherwise alphabetical."""
    values = sorted(set(values))
    if key == "model":
        return [m for m in COMPARED if m in values] + [v for v in values if v not in COMPARED]
    if key == "modalities":
        return sorted(values, key=lambda v: (v == MISSING_TEXT, v.count("+"), v))
    return values


# --------------------------------------------------------------------------- pooled rates
def _strict_sums(frame: pd.DataFrame, by: list[str] | None, columns: list[str], levels: list[int] | None = None) -> pd.DataFrame:
    """Counts summed per group (of columns ``by``, or of index ``levels``), NaN where any run of the group
    did not record the count: a partial sum would be a wrong n."""
    keys = {"by": by} if by is not None else {"level": levels}
    sums = frame.groupby(**keys, sort=True)[columns].sum()
    missing = frame[columns].isna()
    missing = (pd.concat([frame[by], missing], axis=1) if by is not None else missing).groupby(**keys, sort=True)[columns].any()
    return sums.where(~missing)


def pooled(df: pd.DataFrame, by: list[str], num: str, den: str, name: str) -> pd.DataFrame:
    """Per group of ``by``: successes ``<name>_k``, n ``<name>_n``, the pooled rate ``<name>``, its Wilson
    interval ``<name>_low/_high``, and the mean, sample std and count of the per-seed rates
    ``<name>_seed_mean/_seed_std/_seeds`` (runs of one seed are pooled first)."""
    per_seed = _strict_sums(df, [*by, "seed"], [num, den])
    per_seed["rate"] = per_seed[num] / per_seed[den].where(per_seed[den] > 0)
    levels = list(range(len(by)))
    out = _strict_sums(per_seed, None, [num, den], levels).rename(columns={num: f"{name}_k", den: f"{name}_n"})
    out[name] = out[f"{name}_k"] / out[f"{name}_n"].where(out[f"{name}_n"] > 0)
    bounds = [stats.wilson(k, n) for k, n in zip(out[f"{name}_k"], out[f"{name}_n"])]
    out[f"{name}_low"] = [b[0] for b in bounds]
    out[f"{name}_high"] = [b[1] for b in bounds]
    grouped = per_seed.groupby(level=levels, sort=True)["rate"]
    out[f"{name}_seed_mean"] = grouped.mean()
    out[f"{name}_seed_std"] = grouped.std()
    out[f"{name}_seeds"] = grouped.count()
    return out


def seed_counts(df: pd.DataFrame, by: list[str], den: str) -> pd.DataFrame:
    """Per group: the sorted seeds and the n of each (``{seed: n}``), for the "n = persons × seeds" text."""
    per_seed = _strict_sums(df, [*by, "seed"], [den])[den]
    out = per_seed.groupby(level=list(range(len(by))), sort=True).agg(
        lambda s: {int(seed): (None if math.isnan(v) else int(v)) for seed, v in zip(s.index.get_level_values("seed"), s)})
    return out.rename("n_by_seed").to_frame().assign(seeds=lambda t: t["n_by_seed"].map(sorted))


# --------------------------------------------------------------------------- pixel evasion
def pixel_runs(runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str], list[str]]:
    """The pixel runs with labels, their setting keys and their arm keys."""
    kind = ATTACKS.get("pixel")
    df, keys = with_settings(runs, kind)
    return df, keys, arm_keys(kind, keys)


def pixel_curve(runs: pd.DataFrame, points: pd.DataFrame, persons: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """One row per (setting, arm, k): success over all persons and over the clean-correct ones, robust
    dominant accuracy and clean dominant accuracy — each pooled over seeds with its Wilson interval and the
    per-seed mean ± std — the seeds and n per seed, and mean/median queries to success (pooled over the
    persons of ``attack.csv``; the mean of the runs' values where a run has none)."""
    df, keys, arms = pixel_runs(runs)
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
            largest.append(max(int(float(k)) for k in pixels.split(";")) if pixels not in ("", "nan") else math.nan)
        censor = float(np.nanmin(largest)) if not all(math.isnan(v) for v in largest) else math.nan
        if set(group["run_dir"]) <= have and len(group):
            mine = persons[persons["run_dir"].isin(set(group["run_dir"]))].drop_duplicates(["run_dir", "index"])
            needed_all = median_needed(mine["pixels_needed"].to_numpy(float), censor)
            needed_correct = median_needed(mine.loc[mine["correct"] == 1, "pixels_needed"].to_numpy(float), censor)
            source = "persons"
        else:
            # a run with a curve records null for "more than the largest k"; an older run has no such key
            newer = group[group["curve"].notna()] if "curve" in group else group.iloc[:0]

            def recorded(key: str) -> float:
                if key not in newer or newer.empty:
                    return math.nan
                vals = pd.to_numeric(newer[key], errors="coerce").fillna(np.inf).to_numpy(float)
                return float(np.median(vals))

            needed_all, needed_correct = recorded("median_pixels_needed_all"), recorded("median_pixels_needed_correct")
            source = "runs"
        rows.append({**dict(zip([*keys, *arms], values)), "median_pixels_needed_all": needed_all,
                     "median_pixels_needed_correct": needed_correct, "largest_k": censor, "needed_from": source})
    return pd.DataFrame(rows, columns=[*keys, *arms, "median_pixels_needed_all", "median_pixels_needed_correct",
                                       "largest_k", "needed_from"])


def clean_map(runs: pd.DataFrame) -> pd.Series:
    """The clean model's test mAP per pixel run: ``clean_map`` (or ``clean.map``) if the run recorded it,
    else the ``clean.map`` a poisoning run measured on the same clean checkpoint (same weights, same
    test split); NaN otherwise. Indexed like ``runs``."""
    values = pd.Series(np.nan, index=runs.index, dtype=float)
    for key in ("clean_map", "clean.map"):
        if key in runs:
            values = values.fillna(pd.to_numeric(runs[key], errors="coerce"))
    poison = runs[runs["kind"].isin(["poison_backdoor", "poison_collision"])]
    if "checkpoint" in runs and "checkpoint_clean" in poison and "clean.map" in poison:
        by_checkpoint = pd.to_numeric(poison["clean.map"], errors="coerce").groupby(poison["checkpoint_clean"]).mean()
        values = values.fillna(runs["checkpoint"].map(by_checkpoint))
    return values


def pixel_arms(runs: pd.DataFrame, curve: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per (setting, arm): the RobustBench-style line — clean mAP (mean ± std over seeds), clean
    dominant accuracy (pooled, Wilson), and the largest-k medians; the per-k robust accuracy stays in
    ``curve``."""
    df, _, arms = pixel_runs(runs)
    df = df.assign(clean_map=clean_map(runs).loc[df.index])
    maps = df.groupby([*keys, *arms], sort=True)["clean_map"].agg(clean_map_mean="mean", clean_map_std="std",
                                                                   clean_map_seeds="count").reset_index()
    first = curve.drop_duplicates([*keys, *arms])  # the curve is sorted by k within each arm: its smallest k
    cols = [*keys, *arms, "setting", "arm", "clean", "clean_low", "clean_high", "clean_k", "clean_n",
            "clean_seed_mean", "clean_seed_std", "clean_seeds", "seeds", "n_by_seed", "median_pixels_needed_all",
            "median_pixels_needed_correct", "largest_k", "needed_from"]
    return first[cols].merge(maps, on=[*keys, *arms], how="left").reset_index(drop=True)


def _verdict_texts(factor: str, a: str, b: str) -> tuple[str, str]:
    """What A − B < 0 and A − B > 0 (in success rate) mean for this factor."""
    if factor in ATTACKER_KEYS:
        return f"{b} finds more", f"{a} finds more"
    return f"{a} more robust", f"{b} more robust"


def paired_comparisons(runs: pd.DataFrame, persons: pd.DataFrame, resamples: int = stats.RESAMPLES) -> pd.DataFrame:
    """Every paired comparison of the pixel runs: for each compared key (model, modality set, algorithm),
    each setting and k with the other keys held equal, each pair of its values A (later in
    :func:`ordered`) vs B: the success rates over the persons attacked under both (matched on seed and
    index), A − B with its paired-bootstrap interval (clustered by seed), McNemar's p, the per-seed
    differences and the verdict."""
    columns = ["factor", "setting", "held", "k", "a", "b", "n", "seeds", "n_by_seed", "rate_a", "rate_b", "diff",
               "low", "high", "only_a", "only_b", "pvalue", "exact", "seed_diffs", "verdict"]
    if persons.empty or runs.empty or not (runs["kind"] == "pixel").any():
        return pd.DataFrame(columns=columns)
    kind = ATTACKS.get("pixel")
    df, keys, arms = pixel_runs(runs)
    p = persons.merge(df[["run_dir", *keys, *arms]], on="run_dir")
    ident = [*keys, *arms, "k", "seed", "index"]
    duplicated = p.duplicated(ident)
    if duplicated.any():
        log.warning("%d person outcomes appear in more than one run of the same setting and seed; "
                    "the first run's are used", int(duplicated.sum()))
        p = p[~duplicated]
    rows = []
    for factor in kind.compared:
        held = [c for c in (*keys, *arms) if c != factor]
        # one row per (held keys, k, seed, person), one column per level of the factor
        table = p.set_index([*held, "k", "seed", "index", factor])["success"].unstack(factor)
        answers = p.set_index([*held, "k", "seed", "index", factor])["clean_top1"].unstack(factor)
        groups = sorted(table.groupby(level=[*held, "k"], sort=False), key=lambda item: tuple(map(natural_key, item[0])))
        for values, wide in groups:
            levels = ordered(factor, [c for c in wide.columns if wide[c].notna().any()])
            if len(levels) < 2:
                continue
            context = dict(zip(held, values[:-1]))
            for i, b in enumerate(levels):
                for a in levels[i + 1:]:
                    pair = wide[[a, b]].dropna()
                    rows.append(_paired_row(kind, factor, keys, arms, context, int(values[-1]), a, b, pair, resamples,
                                            answers.loc[pair.index, [a, b]]))
    return pd.DataFrame(rows, columns=columns)


def _paired_row(kind: AttackKind, factor: str, keys: list[str], arms: list[str], context: dict[str, str], k: int,
                a: str, b: str, pair: pd.DataFrame, resamples: int, answers: pd.DataFrame | None = None) -> dict[str, Any]:
    seeds = pair.index.get_level_values("seed").to_numpy()
    xa, xb = pair[a].to_numpy(float), pair[b].to_numpy(float)
    interval = stats.paired_bootstrap(xa, xb, clusters=seeds, resamples=resamples)
    test = stats.mcnemar_test(xa.astype(bool), xb.astype(bool))
    lower, higher = _verdict_texts(factor, a, b)
    per_seed = pd.Series(xa - xb).groupby(seeds)
    return {
        "factor": factor, "setting": setting_label(kind, {key: context[key] for key in keys if key in context}),
        "held": arm_label({key: context[key] for key in arms if key in context}), "k": k, "a": a, "b": b,
        "n": int(len(pair)), "seeds": sorted(int(s) for s in set(seeds)),
        "n_by_seed": {int(s): int(c) for s, c in per_seed.size().items()},
        "rate_a": float(xa.mean()) if len(pair) else math.nan, "rate_b": float(xb.mean()) if len(pair) else math.nan,
        "diff": interval.diff, "low": interval.low, "high": interval.high, "only_a": test.only_a,
        "only_b": test.only_b, "pvalue": test.pvalue if len(pair) else math.nan,
        "seed_diffs": {int(s): float(v) for s, v in per_seed.mean().items()},
        "verdict": _comparable(a, b, answers) or (stats.verdict(interval.low, interval.high, test.pvalue, lower, higher)
                                                   if len(pair) else "no pairs (no person attacked under both)"),
    }


def _comparable(a: str, b: str, answers: pd.DataFrame | None) -> str | None:
    """The verdict when either arm's clean model answers (nearly) everyone alike (:func:`one_answer`)."""
    if answers is None or answers.empty:
        return None
    why = [f"{level}'s clean model answers {text}" for level in (a, b) if (text := one_answer(answers[level]))]
    return f"not comparable: {'; '.join(why)}" if why else None


# --------------------------------------------------------------------------- poisoning
def poison_rates(runs: pd.DataFrame, kind_name: str) -> tuple[pd.DataFrame, list[str]]:
    """Per (setting, model): the success measure on the poisoned model and its clean-model control, pooled
    over seeds with Wilson intervals and per-seed spread; clean and poisoned mAP and dominant accuracy and
    their change, mean ± std over seeds."""
    kind = ATTACKS.get(kind_name)
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
            values = pd.to_numeric(df[column], errors="coerce") if column in df else pd.Series(np.nan, index=df.index)
            agg = df.assign(_v=values).groupby(by, sort=True)["_v"].agg(["mean", "std", "count"])
            name = column.replace(".", "_")
            out[f"{name}_mean"], out[f"{name}_std"], out[f"{name}_seeds"] = agg["mean"], agg["std"], agg["count"]
    settings = df.groupby(by, sort=True)["settings"].first()
    out = out.join(settings).reset_index()
    return natural_order(out, [*keys, "model"]), keys


def _delta(df: pd.DataFrame, metric: str) -> pd.Series:
    """``delta_<metric>`` as recorded, else poisoned − clean (a summary without the delta still has both)."""
    delta = pd.to_numeric(df[f"delta_{metric}"], errors="coerce") if f"delta_{metric}" in df else \
        pd.Series(np.nan, index=df.index)
    if f"poisoned.{metric}" in df and f"clean.{metric}" in df:
        delta = delta.fillna(pd.to_numeric(df[f"poisoned.{metric}"], errors="coerce")
                             - pd.to_numeric(df[f"clean.{metric}"], errors="coerce"))
    return delta


def poison_comparisons(table: pd.DataFrame, kind_name: str, runs: pd.DataFrame | None = None,
                       persons: pd.DataFrame | None = None, resamples: int = stats.RESAMPLES) -> pd.DataFrame:
    """Per setting, each pair of models A (later) vs B: A − B of the success rates and the verdict.

    Paired where every run of both models in the setting left per-person outcomes (``persons``: backdoor
    ``triggered.csv``; both variants poisoned with one seed share the poisoned rows and the triggered
    persons): matched on (seed, index), paired-bootstrap interval clustered by seed and McNemar's exact
    test, as for pixel runs. Otherwise unpaired from the pooled counts: Newcombe's interval, Fisher's p."""
    columns = ["kind", "factor", "setting", "held", "a", "b", "n_a", "n_b", "rate_a", "rate_b", "diff", "low", "high",
               "pvalue", "method", "verdict"]
    outcomes = _outcomes_by_model(runs, persons, kind_name)
    rows = []
    for setting, group in table.groupby("setting", sort=False):
        by_model = group.set_index("model")
        levels = ordered("model", by_model.index)
        for i, b in enumerate(levels):
            for a in levels[i + 1:]:
                ra, rb = by_model.loc[a], by_model.loc[b]
                lower, higher = _verdict_texts("model", a, b)
                pair = outcomes.get(setting)
                if pair is not None and {a, b} <= set(pair.columns):
                    both = pair[[a, b]].dropna()
                    xa, xb = both[a].to_numpy(float), both[b].to_numpy(float)
                    seeds = both.index.get_level_values("seed").to_numpy()
                    result = stats.paired_bootstrap(xa, xb, clusters=seeds, resamples=resamples)
                    pvalue = stats.mcnemar_test(xa.astype(bool), xb.astype(bool)).pvalue if len(both) else math.nan
                    n_a = n_b = len(both)
                    rate_a, rate_b = (float(xa.mean()), float(xb.mean())) if len(both) else (math.nan, math.nan)
                    method = "paired"
                else:
                    result = stats.independent_difference(ra["success_k"], ra["success_n"], rb["success_k"], rb["success_n"])
                    pvalue, n_a, n_b, rate_a, rate_b = result.pvalue, ra["success_n"], rb["success_n"], ra["success"], rb["success"]
                    method = "unpaired"
                rows.append({"kind": kind_name, "factor": "model", "setting": setting, "held": "", "a": a, "b": b,
                             "n_a": n_a, "n_b": n_b, "rate_a": rate_a, "rate_b": rate_b,
                             "diff": result.diff, "low": result.low, "high": result.high, "pvalue": pvalue,
                             "method": method, "verdict": stats.verdict(result.low, result.high, pvalue, lower, higher)})
    return pd.DataFrame(rows, columns=columns)


def _outcomes_by_model(runs: pd.DataFrame | None, persons: pd.DataFrame | None, kind_name: str) -> dict[str, pd.DataFrame]:
    """Per setting whose every run has per-person outcomes: a (seed, index) × model table of successes."""
    if runs is None or persons is None or persons.empty:
        return {}
    df, _ = with_settings(runs, ATTACKS.get(kind_name))
    have = set(persons["run_dir"])
    out = {}
    for setting, group in df.groupby("setting", sort=False):
        if not set(group["run_dir"]) <= have:
            continue
        p = persons.merge(group[["run_dir", "model"]], on="run_dir")
        p = p.drop_duplicates(["seed", "index", "model"])
        out[setting] = p.set_index(["seed", "index", "model"])["success"].unstack("model")
    return out


# --------------------------------------------------------------------------- the verdicts at a glance
def verdict_summary(paired: pd.DataFrame, poison: list[pd.DataFrame]) -> pd.DataFrame:
    """One row per comparison (pixel: over all k): the difference at the largest k with its interval, the
    verdict there, and every k at which a difference was detected."""
    rows = []
    if not paired.empty:
        for (factor, setting, held, a, b), group in paired.groupby(["factor", "setting", "held", "a", "b"], sort=False):
            group = group.sort_values("k")
            last = group.iloc[-1]
            detected = group[group["verdict"].map(lambda v: v.endswith("more robust") or v.endswith("finds more"))]
            rows.append({"kind": "pixel", "factor": factor, "comparison": f"{a} vs {b}", "setting": setting,
                         "held": held, "at": f"k={int(last['k'])}", "n": f"{int(last['n'])} pairs",
                         "seeds": last["seeds"], "diff": last["diff"], "low": last["low"], "high": last["high"],
                         "pvalue": last["pvalue"], "verdict": last["verdict"],
                         "detected_at": [{"k": int(r["k"]), "verdict": r["verdict"]} for _, r in detected.iterrows()]})
    for table in poison:
        for _, r in table.iterrows():
            n = ("–" if math.isnan(r["n_a"]) or math.isnan(r["n_b"]) else
                 f"{int(r['n_a'])} pairs" if r["method"] == "paired" else f"{int(r['n_a'])} vs {int(r['n_b'])}")
            rows.append({"kind": r["kind"], "factor": "model", "comparison": f"{r['a']} vs {r['b']}",
                         "setting": r["setting"], "held": "", "at": "", "n": n, "seeds": None, "diff": r["diff"],
                         "low": r["low"], "high": r["high"], "pvalue": r["pvalue"], "verdict": r["verdict"],
                         "detected_at": []})
    return pd.DataFrame(rows, columns=["kind", "factor", "comparison", "setting", "held", "at", "n", "seeds", "diff",
                                       "low", "high", "pvalue", "verdict", "detected_at"])
