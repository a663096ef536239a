"""The report's defense figures: what each defense bought, pooled over seeds with Wilson intervals.

Which kinds' runs enter which table is the registry's ``defenses`` tags (where the defenses an attack
measures act), so a new attack kind joins these tables by its entry alone:

* **Certified** (runs of a kind measuring ``certify`` defenses, e.g. pixel runs on a randomized-ablation
  checkpoint given ``attack.certificates``): certified
  dominant accuracy at each radius over the attacked persons, next to the soundness check (persons
  certified to r that the attack fooled with k ≤ r: must be 0).
* **Poisoning defenses** (runs of a kind measuring ``training`` or ``test`` defenses, e.g. backdoor runs
  with ``defense=spectral|activation_clustering|strip``): detection
  TPR over the poisoned training rows and FPR over the clean ones; ASR on the poisoned model and after
  filtering and retraining, with the retrained model's clean mAP; STRIP's false acceptance of triggered
  persons at its false-rejection target, and the false rejection it actually had on clean test persons.

Runs record rates with their n; counts are recovered as rate × n (the rate was computed as count / n).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from emotic_mm.attacks.registry import ATTACKS, AttackKind
from emotic_mm.report.tables import arm_keys, natural_order, pooled, seed_counts, with_settings

CERTIFIED = ("certify",)  # where-tags whose runs carry certificates
POISONING = ("training", "test")  # where-tags of the training-set filters and test-time detectors


@dataclass
class DefenseTables:
    """What the defenses bought, over every kind present: the Defenses section and report.json's
    ``defenses`` entry."""

    certified: pd.DataFrame = field(default_factory=pd.DataFrame)
    radii: list[int] = field(default_factory=list)
    poisoning: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def empty(self) -> bool:
        return self.certified.empty and self.poisoning.empty


def defense_tables(runs: pd.DataFrame) -> DefenseTables:
    """Certified accuracy and poisoning-defense rates of the kinds, present in ``runs``, whose registry
    entry measures such defenses (one kind each; a second would need its own columns)."""
    present = set(runs["kind"]) if not runs.empty else set()
    kinds = [k for k in ATTACKS if k.name in present]
    out = DefenseTables()
    for kind in (k for k in kinds if set(k.defenses) & set(CERTIFIED)):
        out.certified, out.radii = certified_rates(kind, runs)
        break
    for kind in (k for k in kinds if set(k.defenses) & set(POISONING)):
        out.poisoning = poison_defense_rates(kind, runs)
        break
    return out


def _numeric(df: pd.DataFrame, column: str) -> pd.Series:
    return pd.to_numeric(df[column], errors="coerce") if column in df else pd.Series(np.nan, index=df.index)


def _count(df: pd.DataFrame, rate: str, n: pd.Series) -> pd.Series:
    return (_numeric(df, rate) * n).round()


def certified_rates(kind: AttackKind, runs: pd.DataFrame) -> tuple[pd.DataFrame, list[int]]:
    """Per (setting, arm) of the runs of ``kind`` that recorded certificates: ``r<r>`` pooled certified
    accuracy (with ``_low/_high``, Wilson) at every radius, abstentions, and the summed soundness check."""
    df, keys = with_settings(runs, kind)
    arms = arm_keys(kind, keys)
    df = df[_numeric(df, "certified.persons").notna()] if len(df) else df
    if df.empty:
        return pd.DataFrame(), []
    radii = sorted(int(c.rsplit(".", 1)[1]) for c in df.columns if c.startswith("certified.at."))
    by = [*keys, *arms, "setting", "arm"]
    df = df.assign(
        **{f"_r{r}": _numeric(df, f"certified.at.{r}") for r in radii},
        _n=_numeric(df, "certified.persons"),
        _abstained=_numeric(df, "certified.abstained"),
        _violations=_numeric(df, "soundness.violations"),
        _checked=_numeric(df, "soundness.checked_person_k"),
    )
    out = seed_counts(df, by, "_n")
    for r in radii:
        out = out.join(pooled(df, by, f"_r{r}", "_n", f"r{r}"))
    out = out.join(pooled(df, by, "_abstained", "_n", "abstained"))
    out = out.join(
        df.groupby(by, sort=True)[["_violations", "_checked"]]
        .sum(min_count=1)
        .rename(columns={"_violations": "violations", "_checked": "checked"})
    )
    return natural_order(out.reset_index(), [*keys, *arms]), radii


def poison_defense_rates(kind: AttackKind, runs: pd.DataFrame) -> pd.DataFrame:
    """Per (setting, model) of the runs of ``kind`` with a training-set or test-time defense: detection
    ``tpr``/``fpr``, ``asr`` before and ``asr_after`` the defense, the defended model's clean mAP, and
    STRIP's ``far``/``frr`` — each pooled (Wilson) over the seeds whose runs recorded it."""
    df, keys = with_settings(runs, kind)
    acted = _numeric(df, "detection.rows").notna() | _numeric(df, "strip.triggered_persons").notna()
    df = df[acted]
    if df.empty:
        return pd.DataFrame()
    by = [*keys, "model", "setting", "arm"]
    poisoned, rows = _numeric(df, "detection.poisoned"), _numeric(df, "detection.rows")
    triggered = _numeric(df, "triggered_persons")
    df = df.assign(
        _tp=_count(df, "detection.tpr", poisoned),
        _poisoned=poisoned,
        _fp=_count(df, "detection.fpr", rows - poisoned),
        _clean_rows=rows - poisoned,
        _asr=_count(df, "asr", triggered),
        _asr_after=_count(df, "after_defense.asr", triggered),
        _triggered=triggered,
        _strip_n=_numeric(df, "strip.triggered_persons"),
        _strip_clean=_numeric(df, "strip.clean_persons"),
        _map_after=_numeric(df, "after_defense.map"),
    )
    df = df.assign(
        _far=_count(df, "strip.false_acceptance", df["_strip_n"]),
        _frr=_count(df, "strip.false_rejection", df["_strip_clean"]),
    )
    out = seed_counts(df, by, "_triggered")
    for num, den, name in (
        ("_tp", "_poisoned", "tpr"),
        ("_fp", "_clean_rows", "fpr"),
        ("_asr", "_triggered", "asr"),
        ("_asr_after", "_triggered", "asr_after"),
        ("_far", "_strip_n", "far"),
        ("_frr", "_strip_clean", "frr"),
    ):
        out = out.join(pooled(df, by, num, den, name))
    maps = df.groupby(by, sort=True)["_map_after"].agg(map_after_mean="mean", map_after_std="std")
    clean_map = (
        df.assign(_m=_numeric(df, "clean.map")).groupby(by, sort=True)["_m"].mean().rename("clean_map_mean")
    )
    return natural_order(out.join(maps).join(clean_map).reset_index(), [*keys, "model"])
