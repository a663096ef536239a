"""What every kind's tables share: settings and arms, pooled rates with intervals and per-seed spread,
the verdict rule's wording, and report.json's plain values. The kinds' own tables build on these
(:mod:`~emotic_mm.report.pixel_tables`, :mod:`~emotic_mm.report.poison_tables`,
:mod:`~emotic_mm.report.defense_tables`).

Every measure is a rate of an attacker's success (fraction 0–1; lower = more robust), or an accuracy.
Runs are grouped by *setting* (every key that defines the experiment, :func:`setting_keys`) and *arm*
(the things compared on the same persons: model, and for pixel attacks the modality set); runs of a group
differ only in their seed.

* Rates pool the persons of all seeds (n = persons × seeds) with a Wilson interval; the mean ± std of the
  per-seed rates sits beside them, since the pooled interval covers person sampling, not model seeds.
* Comparisons on the same persons are paired (paired bootstrap, McNemar); comparisons of counts only are
  unpaired (Newcombe's interval, Fisher's test).
* :func:`~emotic_mm.report.stats.verdict` turns each difference into "A more robust", "B more robust" or
  "no difference detected at this n".
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from emotic_mm.attacks.registry import ATTACKS, AttackKind
from emotic_mm.report import stats

COMPARED = ("baseline", "joint")  # the variants the study is about, first in every table
ATTACKER_KEYS = ("algorithm",)  # compared keys that choose the attacker: a higher success rate is theirs
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
    shown = {
        k: canonical(v) for k, v in values.items() if not (k == "target" and canonical(v) == MISSING_TEXT)
    }
    return " · ".join([kind.short, *(_value_text(k, v) for k, v in shown.items())])


def arm_label(values: dict[str, Any]) -> str:
    """``joint · context+body+text · median`` (the modality set left out where the runs do not record it,
    the defense where there is none)."""
    return " · ".join(
        canonical(v)
        for k, v in values.items()
        if not (k in ("modalities", "defense") and canonical(v) in (MISSING_TEXT, "none"))
    )


def with_settings(runs: pd.DataFrame, kind: AttackKind) -> tuple[pd.DataFrame, list[str]]:
    """The runs of ``kind`` with every setting and arm key as :func:`canonical` text, a ``settings`` dict of
    the recorded values, and the ``setting`` and ``arm`` labels; and the setting keys."""
    df = runs[runs["kind"] == kind.name].copy()
    keys = setting_keys(df, kind)
    arms = arm_keys(kind, keys)
    for key in keys + arms:
        if key not in df:
            df[key] = None
    df["settings"] = [
        dict(zip(keys, (None if isinstance(v, float) and math.isnan(v) else v for v in row)))
        for row in df[keys].itertuples(index=False)
    ]
    for key in keys + arms:
        df[key] = df[key].map(canonical)
    df["setting"] = [setting_label(kind, dict(zip(keys, row))) for row in df[keys].itertuples(index=False)]
    df["arm"] = [arm_label(dict(zip(arms, row))) for row in df[arms].itertuples(index=False)]
    return df, keys


def label_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Every run with its ``setting`` and ``arm`` labels, in
    :data:`~emotic_mm.attacks.registry.ATTACKS` order."""
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
    joint, fewer modalities before more (image-only before fused), no defense before a defense, otherwise
    alphabetical."""
    values = sorted(set(values))
    if key == "model":
        return [m for m in COMPARED if m in values] + [v for v in values if v not in COMPARED]
    if key == "modalities":
        return sorted(values, key=lambda v: (v == MISSING_TEXT, v.count("+"), v))
    if key == "defense":  # "median vs none": the undefended model is the reference
        return sorted(values, key=lambda v: (v != "none", v))
    return values


# --------------------------------------------------------------------------- pooled rates
def _strict_sums(
    frame: pd.DataFrame, by: list[str] | None, columns: list[str], levels: list[int] | None = None
) -> pd.DataFrame:
    """Counts summed per group (of columns ``by``, or of index ``levels``), NaN where any run of the group
    did not record the count: a partial sum would be a wrong n."""
    keys = {"by": by} if by is not None else {"level": levels}
    sums = frame.groupby(**keys, sort=True)[columns].sum()
    missing = frame[columns].isna()
    missing = (
        (pd.concat([frame[by], missing], axis=1) if by is not None else missing)
        .groupby(**keys, sort=True)[columns]
        .any()
    )
    return sums.where(~missing)


def pooled(df: pd.DataFrame, by: list[str], num: str, den: str, name: str) -> pd.DataFrame:
    """Per group of ``by``: successes ``<name>_k``, n ``<name>_n``, the pooled rate ``<name>``, its Wilson
    interval ``<name>_low/_high``, and the mean, sample std and count of the per-seed rates
    ``<name>_seed_mean/_seed_std/_seeds`` (runs of one seed are pooled first)."""
    per_seed = _strict_sums(df, [*by, "seed"], [num, den])
    per_seed["rate"] = per_seed[num] / per_seed[den].where(per_seed[den] > 0)
    levels = list(range(len(by)))
    out = _strict_sums(per_seed, None, [num, den], levels).rename(
        columns={num: f"{name}_k", den: f"{name}_n"}
    )
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
        lambda s: {
            int(seed): (None if math.isnan(v) else int(v))
            for seed, v in zip(s.index.get_level_values("seed"), s)
        }
    )
    return out.rename("n_by_seed").to_frame().assign(seeds=lambda t: t["n_by_seed"].map(sorted))


# --------------------------------------------------------------------------- pixel evasion
# --------------------------------------------------------------------------- comparisons and verdicts
def verdict_texts(factor: str, a: str, b: str) -> tuple[str, str]:
    """What A − B < 0 and A − B > 0 (in success rate) mean for this factor."""
    if factor in ATTACKER_KEYS:
        return f"{b} finds more", f"{a} finds more"
    return f"{a} more robust", f"{b} more robust"


VERDICT_KEYS = [
    "kind",
    "factor",
    "comparison",
    "setting",
    "held",
    "at",
    "n",
    "seeds",
    "diff",
    "low",
    "high",
    "pvalue",
    "verdict",
    "detected_at",
]


def verdict_summary(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The verdicts at a glance: every kind's verdict rows (:data:`VERDICT_KEYS`), in registry order.

    ``at`` names the point a row's difference is taken at (a pixel run's largest k), empty where a run has
    one point; ``detected_at`` lists every point at which a difference was detected."""
    return pd.DataFrame(rows, columns=VERDICT_KEYS)


# --------------------------------------------------------------------------- report.json
def plain(value: Any) -> Any:
    """JSON-ready, recursively: tables to records, numpy scalars to Python, NaN to null, ∞ to "inf",
    tuples to lists."""
    if isinstance(value, pd.DataFrame):
        return records(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain(v) for v in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """A table as JSON-ready records (one per row)."""
    return [plain(r) for r in table.to_dict(orient="records")]
