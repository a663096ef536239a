"""The pixel-evasion section of ``report.md``: success over the pixel budget k, on the clean-correct
persons, the RobustBench-style table, queries to success, and the paired differences.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from emotic_mm.attacks.registry import AttackKind
from emotic_mm.measures import median_pixels
from emotic_mm.report.markdown import (
    MISSING,
    difference,
    n_text,
    number,
    pct,
    pts,
    pvalue,
    rate,
    seeds_text,
    table,
    unmeasured,
)


def _by_arm(curve: pd.DataFrame):
    """``(setting, arm, rows by k)`` in table order."""
    for (setting, arm), group in curve.groupby(["setting", "arm"], sort=False):  # the curve's (natural) order
        yield setting, arm, group.set_index("k").sort_index()


def _k_cells(by_k: pd.DataFrame, ks: list[int], name: str, n_column: str, base_n: Any) -> list[str]:
    cells = []
    for k in ks:
        if k not in by_k.index:
            cells.append(MISSING)
            continue
        r = by_k.loc[k]
        text = rate(r[name], r[f"{name}_low"], r[f"{name}_high"], r[f"{name}_seed_std"], r[f"{name}_seeds"])
        if (
            not unmeasured(r[n_column]) and r[n_column] != base_n
        ):  # a k measured on other persons than the first
            text += f" (n={int(r[n_column])})"
        cells.append(text)
    return cells


def rate_table(curve: pd.DataFrame, name: str) -> str:
    """Rate ``name`` at every k, one row per setting and arm, with n (persons × seeds) and seeds."""
    ks = sorted(int(k) for k in curve["k"].unique())
    rows = []
    for setting, arm, by_k in _by_arm(curve):
        first = by_k.iloc[0]
        rows.append(
            [
                setting,
                arm,
                n_text(first["n_by_seed"], "persons"),
                seeds_text(first["seeds"]),
                *_k_cells(by_k, ks, name, f"{name}_n", first[f"{name}_n"]),
            ]
        )
    return table(["setting", "model · modalities", "n", "seeds", *(f"k={k}" for k in ks)], rows)


def pixel_section(
    kind: AttackKind,
    curve: pd.DataFrame,
    arms: pd.DataFrame,
    paired: pd.DataFrame,
    figures: Sequence[tuple[str, str]] = (),
    certified: pd.DataFrame | None = None,
    radii: Sequence[int] = (),
) -> str:
    """The section of a kind whose runs hold a success curve over the pixel budget k."""
    ks = sorted(int(k) for k in curve["k"].unique())
    correct = []
    for setting, arm, by_k in _by_arm(curve):
        first = by_k.iloc[0]
        n = first["success_correct_n"]
        correct.append(
            [
                setting,
                arm,
                MISSING if unmeasured(n) else f"{int(n)} persons",
                seeds_text(first["seeds"]),
                *_k_cells(by_k, ks, "success_correct", "success_correct_n", n),
            ]
        )
    queries = []
    for setting, arm, by_k in _by_arm(curve):
        queries.append(
            [
                setting,
                arm,
                *(
                    f"{number(by_k.loc[k, 'mean_queries'])} / {number(by_k.loc[k, 'median_queries'])}"
                    if k in by_k.index
                    else MISSING
                    for k in ks
                ),
            ]
        )
    k_cols = [f"k={k}" for k in ks]
    lines = [
        f"## {kind.title}",
        "",
        "### Success against the pixel budget k",
        "",
        "Share of attacked persons whose top-1 the attack changed (untargeted) or made the target "
        "(targeted), within k pixels: pooled % [Wilson 95 %] sd over seeds. Each person is attacked "
        "once along the schedule of k, so a person fooled at k counts at every larger k.",
        "",
        rate_table(curve, "success"),
    ]
    for caption, path in figures:
        lines += ["", f"![{caption}]({path})"]
    lines += [
        "",
        "### Success on the persons the clean model got right",
        "",
        "The same, over the persons whose clean top-1 was in their label set (a person already misclassified "
        'is not "fooled"); n is their count over all seeds.',
        "",
        table(["setting", "model · modalities", "n", "seeds", *k_cols], correct),
        "",
        "### Clean and robust accuracy (RobustBench-style)",
        "",
        robustbench_table(curve, arms, certified, radii),
        "",
        "### Queries to success",
        "",
        "Model evaluations per successful person, mean / median over the fooled persons of all seeds "
        "(cumulative along the schedule of k).",
        "",
        table(["setting", "model · modalities", *k_cols], queries),
        "",
        paired_section(paired),
    ]
    return "\n".join(lines)


def robustbench_table(
    curve: pd.DataFrame, arms: pd.DataFrame, certified: pd.DataFrame | None = None, radii: Sequence[int] = ()
) -> str:
    """Clean mAP and clean dominant accuracy, then robust dominant accuracy at each k, median queries at
    the largest k and median pixels needed — one row per setting and arm (a defense is part of the
    setting) — and, where any row has certificates, its certified accuracy at each radius."""
    ks = sorted(int(k) for k in curve["k"].unique())
    rows = []
    by_arm = {(s, a): by_k for s, a, by_k in _by_arm(curve)}
    cert = (
        {}
        if certified is None or certified.empty
        else {(r["setting"], r["arm"]): r for _, r in certified.iterrows()}
    )
    for _, r in arms.iterrows():
        by_k = by_arm[(r["setting"], r["arm"])]
        last = by_k.iloc[-1]
        cmap = (
            MISSING
            if unmeasured(r["clean_map_mean"])
            else (
                f"{pct(r['clean_map_mean'], 2)}"
                + (f" sd {r['clean_map_std'] * 100:.2f}" if r["clean_map_seeds"] >= 2 else "")
                + f" ({int(r['clean_map_seeds'])} seed{'s' if r['clean_map_seeds'] != 1 else ''})"
            )
        )
        rows.append(
            [
                r["setting"],
                r["arm"],
                n_text(r["n_by_seed"], "persons"),
                seeds_text(r["seeds"]),
                cmap,
                rate(r["clean"], r["clean_low"], r["clean_high"], r["clean_seed_std"], r["clean_seeds"]),
                *_k_cells(by_k, ks, "robust", "robust_n", r["clean_n"]),
                f"{number(last['median_queries'])} (k={int(by_k.index[-1])})",
                f"{median_pixels(r['median_pixels_needed_all'], r['largest_k'])} / "
                f"{median_pixels(r['median_pixels_needed_correct'], r['largest_k'])}",
            ]
        )
        if cert:
            c = cert.get((r["setting"], r["arm"]))
            rows[-1].append(MISSING if c is None else " / ".join(pct(c[f"r{x}"]) for x in radii))
    columns = [
        "setting",
        "model · modalities",
        "n",
        "seeds",
        "clean mAP",
        "clean dominant acc",
        *(f"robust acc k={k}" for k in ks),
        "median queries",
        "median pixels needed (all / clean-correct)",
    ]
    if cert:
        columns.append(f"certified acc r={' / '.join(map(str, radii))} (%, see Defenses)")
    return "\n".join(
        [
            "Clean dominant accuracy = top-1 in the label set; robust dominant accuracy = top-1 still in the "
            "label set under the attack with k pixels (pooled % [Wilson 95 %] sd over seeds). Clean mAP: "
            "macro AP over the 26 categories (torchmetrics) of the clean model on the test split, mean over "
            "seeds, where a run recorded it (`clean_map`) or a poisoning run measured the same clean "
            "checkpoint. Median pixels needed: the smallest k that fooled a person (the L0 size of its "
            "minimal perturbation found), median over persons; `> k` when the median person was not "
            "fooled within the largest k.",
            "",
            table(columns, rows),
        ]
    )


PAIRED_COLUMNS = [
    "comparison (A vs B)",
    "setting",
    "held equal",
    "k",
    "n pairs",
    "seeds",
    "A (%)",
    "B (%)",
    "A − B (pts) [95 % CI]",
    "McNemar p (A only / B only)",
    "per-seed A − B (pts)",
    "verdict",
]


def paired_section(paired: pd.DataFrame) -> str:
    head = "### Paired differences"
    if paired.empty:
        return (
            f"{head}\n\nNo two variants, modality sets or algorithms were attacked on the same persons in "
            "one setting (or the runs have no attack.csv)."
        )
    rows = []
    for _, r in paired.iterrows():
        seed_diffs = ", ".join(f"{seed}: {pts(v)}" for seed, v in r["seed_diffs"].items())
        rows.append(
            [
                f"{r['a']} vs {r['b']}",
                r["setting"],
                r["held"] or MISSING,
                int(r["k"]),
                n_text(r["n_by_seed"], "pairs"),
                seeds_text(r["seeds"]),
                pct(r["rate_a"]),
                pct(r["rate_b"]),
                difference(r["diff"], r["low"], r["high"]),
                f"{pvalue(r['pvalue'])} ({r['only_a']} / {r['only_b']})",
                seed_diffs,
                r["verdict"],
            ]
        )
    return "\n".join(
        [
            head,
            "",
            "Success rate of A minus that of B over the persons attacked under both (matched on seed and "
            "person index), with the paired-bootstrap 95 % interval and McNemar's p on the discordant pairs "
            "(persons only A, or only B, was fooled on). Model and modality comparisons: negative = A more "
            "robust. Algorithm comparisons: positive = A finds more.",
            "",
            table(PAIRED_COLUMNS, rows),
        ]
    )
