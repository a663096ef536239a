"""The poisoning sections of ``report.md``: a kind's success (and clean-model control) per setting and
model with the comparison between models, and what poisoning costs on clean data, over all such kinds.

Any kind without report hooks of its own gets this section, worded from its registry entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from emotic_mm.attacks.registry import AttackKind
from emotic_mm.report.markdown import (
    MISSING,
    difference,
    n_text,
    pct,
    pts,
    pvalue,
    rate,
    seeds_text,
    table,
    unmeasured,
)


@dataclass(frozen=True)
class Wording:
    """How a section names a kind's measure: what it is (``intro``), what its n counts (``unit``) and the
    column headers of the measure on the poisoned model and of its clean-model control."""

    intro: str
    unit: str
    measure: str
    control: str = ""


def default_wording(kind: AttackKind) -> Wording:
    """The wording of a kind that brings none: its registry entry's measure, control and count keys."""
    unit = kind.count.replace("_", " ")
    intro = (
        f"`{kind.measure}`: share of the {unit} on which the attack succeeded, pooled over seeds"
        + (f"; `{kind.control}`: the same on the clean model, the control" if kind.control else "")
        + f". n = {unit} × seeds."
    )
    return Wording(intro, unit, f"{kind.measure} (%)", f"{kind.control} (%)" if kind.control else "")


CLEAN_COSTS = ["clean → poisoned mAP (%)", "clean → poisoned dominant acc (%)"]


def poison_section(
    kind: AttackKind,
    wording: Wording,
    tab: pd.DataFrame,
    comparisons: pd.DataFrame,
    figures: Sequence[tuple[str, str]] = (),
    clean_costs: bool = True,
) -> str:
    """Success (and clean-model control) per setting and model, pooled over seeds, with the clean → poisoned
    metrics where ``clean_costs``; the model comparison."""
    columns = [
        "setting",
        "model",
        "n",
        "seeds",
        wording.measure,
        *([wording.control] if kind.control else []),
        *(CLEAN_COSTS if clean_costs else []),
    ]
    rows = []
    for _, r in tab.iterrows():
        cells = [
            r["setting"],
            r["model"],
            n_text(r["n_by_seed"], wording.unit),
            seeds_text(r["seeds"]),
            rate(
                r["success"], r["success_low"], r["success_high"], r["success_seed_std"], r["success_seeds"]
            ),
        ]
        if kind.control:
            cells.append(
                rate(
                    r["control"],
                    r["control_low"],
                    r["control_high"],
                    r["control_seed_std"],
                    r["control_seeds"],
                )
            )
        if clean_costs:
            cells += [
                f"{pct(r['clean_map_mean'], 2)} → {pct(r['poisoned_map_mean'], 2)}",
                f"{pct(r['clean_dominant_acc_mean'])} → {pct(r['poisoned_dominant_acc_mean'])}",
            ]
        rows.append(cells)
    lines = [f"## {kind.title}", "", wording.intro, "", table(columns, rows)]
    for caption, path in figures:
        lines += ["", f"![{caption}]({path})"]
    if not comparisons.empty:
        comp_rows = [
            [
                f"{r['a']} vs {r['b']}",
                r["setting"],
                (
                    f"{int(r['n_a'])} pairs"
                    if r["method"] == "paired"
                    else f"{int(r['n_a'])} vs {int(r['n_b'])}"
                )
                if not (unmeasured(r["n_a"]) or unmeasured(r["n_b"]))
                else MISSING,
                r["method"],
                pct(r["rate_a"]),
                pct(r["rate_b"]),
                difference(r["diff"], r["low"], r["high"]),
                pvalue(r["pvalue"]),
                r["verdict"],
            ]
            for _, r in comparisons.iterrows()
        ]
        lines += [
            "",
            "Between models (negative = A more robust). Paired where both models' runs left per-person "
            "outcomes (the same triggered persons under the same seed): paired-bootstrap 95 % interval and "
            "McNemar's exact p; otherwise unpaired from the counts: Newcombe 95 % interval, "
            "Fisher's exact p.",
            "",
            table(
                [
                    "comparison (A vs B)",
                    "setting",
                    "n",
                    "method",
                    "A (%)",
                    "B (%)",
                    "A − B (pts) [95 % CI]",
                    "p",
                    "verdict",
                ],
                comp_rows,
            ),
        ]
    return "\n".join(lines)


def deltas_section(tab: pd.DataFrame, figure: str | None) -> str:
    """The clean and the poisoned model on clean data, per setting and model of every poisoning kind."""
    columns = [
        "setting",
        "model",
        "seeds",
        "clean mAP (%)",
        "poisoned mAP (%)",
        "Δ mAP (pts)",
        "clean dominant acc (%)",
        "poisoned dominant acc (%)",
        "Δ dominant acc (pts)",
    ]

    def delta(mean: Any, std: Any, n: Any) -> str:
        return pts(mean) + (
            f" sd {std * 100:.1f}" if not unmeasured(std) and not unmeasured(n) and n >= 2 else ""
        )

    rows = [
        [
            r["setting"],
            r["model"],
            seeds_text(r["seeds"]),
            pct(r["clean_map_mean"], 2),
            pct(r["poisoned_map_mean"], 2),
            delta(r["delta_map_mean"], r["delta_map_std"], r["delta_map_seeds"]),
            pct(r["clean_dominant_acc_mean"]),
            pct(r["poisoned_dominant_acc_mean"]),
            delta(r["delta_dominant_acc_mean"], r["delta_dominant_acc_std"], r["delta_dominant_acc_seeds"]),
        ]
        for _, r in tab.iterrows()
    ]
    lines = [
        "## What poisoning costs on clean data",
        "",
        "The clean model and the poisoned model on the clean test split: means over seeds "
        "(sd with two or more). A poison that leaves these unchanged is one a defender would not notice "
        "from accuracy alone.",
        "",
        table(columns, rows),
    ]
    if figure:
        lines += ["", f"![clean-metric deltas]({figure})"]
    return "\n".join(lines)
