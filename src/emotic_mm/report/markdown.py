"""What every section of ``report.md`` shares: number formats, the Markdown table, the header, the
verdicts and the examples. The kinds' own sections build on these (:mod:`~emotic_mm.report.pixel_markdown`,
:mod:`~emotic_mm.report.poison_markdown`, :mod:`~emotic_mm.report.defense_markdown`); figures are linked by
relative path so the report folder can be moved or attached as a whole.

Every rate is printed as ``pooled % [Wilson 95 % interval]`` with ``sd`` (the std of the per-seed rates)
beside it, and every table has its n (persons × seeds) and its seeds, so a number read out of the page
keeps its uncertainty.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from emotic_mm.attacks.registry import ATTACKS
from emotic_mm.measures import MISSING, ONE_ANSWER_SHARE
from emotic_mm.report import stats


def unmeasured(value: Any) -> bool:
    """None or NaN: nothing was measured."""
    return value is None or (isinstance(value, (float, np.floating)) and math.isnan(value))


def pct(value: Any, digits: int = 1) -> str:
    """A fraction as a percentage, a dash when nothing was measured."""
    return MISSING if unmeasured(value) else f"{value * 100:.{digits}f}"


def rate(value: Any, low: Any, high: Any, std: Any = math.nan, seeds: Any = 0, digits: int = 1) -> str:
    """``12.3 [10.1, 14.9] sd 1.2``: pooled rate, Wilson interval, and the std of the per-seed rates (with two
    or more seeds) — all in %."""
    if unmeasured(value):
        return MISSING
    text = (
        f"{pct(value, digits)} [{pct(low, digits)}, {pct(high, digits)}]"
        if not unmeasured(low)
        else pct(value, digits)
    )
    if not unmeasured(seeds) and int(seeds) >= 2 and not unmeasured(std):
        text += f" sd {std * 100:.{digits}f}"
    return text


def pts(diff: Any) -> str:
    """A difference of rates in percentage points, signed."""
    return MISSING if unmeasured(diff) else f"{diff * 100:+.1f}"


def difference(diff: Any, low: Any, high: Any) -> str:
    """``+3.1 [+0.5, +5.8]``: A − B in points with its 95 % interval."""
    if unmeasured(diff):
        return MISSING
    return f"{pts(diff)} [{pts(low)}, {pts(high)}]" if not unmeasured(low) else pts(diff)


def pvalue(p: Any) -> str:
    if unmeasured(p):
        return MISSING
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def number(value: Any, fmt: str = "{:.0f}") -> str:
    return MISSING if unmeasured(value) else fmt.format(value)


def n_text(n_by_seed: Any, unit: str = "") -> str:
    """The pooled n and how it splits over seeds: ``600 = 200 × 3 seeds``, ``450 = 200 + 150 + 100``,
    ``200 (1 seed)``; a dash where a run did not record its n."""
    if not isinstance(n_by_seed, dict) or not n_by_seed or any(v is None for v in n_by_seed.values()):
        return MISSING
    values = list(n_by_seed.values())
    total = sum(values)
    unit = f" {unit}" if unit else ""
    if len(values) == 1:
        return f"{total}{unit} (1 seed)"
    if len(set(values)) == 1:
        return f"{total}{unit} = {values[0]} × {len(values)} seeds"
    return f"{total}{unit} = {' + '.join(map(str, values))}"


def seeds_text(seeds: Any) -> str:
    return ", ".join(map(str, seeds)) if isinstance(seeds, (list, tuple)) and seeds else MISSING


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table; ``|`` in cells is escaped so a label cannot break the layout."""

    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, columns)) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(map(cell, r)) + " |" for r in rows]
    return "\n".join(lines)


# --------------------------------------------------------------------------- header and verdicts
def header(
    root: str,
    runs: pd.DataFrame,
    models: list[str],
    generated: str,
    commands: list[str],
    unknown: list[str],
    not_finite: Sequence[str] = (),
) -> str:
    counts = runs["kind"].value_counts()
    by_kind = ", ".join(
        f"{ATTACKS.get(k).title.lower()}: {int(counts[k])}" for k in ATTACKS.names() if k in counts
    )
    seeds = sorted({int(s) for s in pd.to_numeric(runs["seed"], errors="coerce").dropna()})
    modalities = sorted({str(m) for m in runs.get("modalities", pd.Series(dtype=object)).dropna()})
    lines = [
        "# Robustness report",
        "",
        f"- runs folder: `{root}`",
        f"- runs: {len(runs)} ({by_kind})",
        f"- models: {', '.join(models)}",
        *([f"- modality sets (pixel attacks): {', '.join(modalities)}"] if modalities else []),
        f"- seeds: {len(seeds)} ({', '.join(map(str, seeds)) or 'none recorded'}); model seed = attack seed",
        f"- generated: {generated}",
        "- data: [report.json](report.json) (every number of this page), [runs.csv](runs.csv) "
        "(one row per run, flattened summary.json)",
        "",
        "**How to read the numbers.** Rates are attacker success (lower = more robust) or accuracy, in %. "
        "A rate pools the persons of all seeds (n = persons × seeds, both given) and is followed by its "
        "Wilson 95 % interval in brackets and `sd`, the standard deviation of the per-seed rates: the "
        "interval covers the sampling of persons, the sd the spread over model seeds. A difference A − B "
        "of two variants attacked on the same persons is paired: its 95 % interval is a paired bootstrap "
        f"({stats.RESAMPLES:,} resamples of persons within each seed, seed {stats.BOOTSTRAP_SEED}), its test "
        "McNemar's exact test. Poisoning differences (counts only) "
        "use Newcombe's interval and Fisher's exact test. A verdict says *more robust* only when the "
        "interval excludes 0 and the test rejects at 5 %; otherwise "
        f"*{stats.NO_DIFFERENCE}*. A comparison with an arm whose clean model gives at least "
        f"{ONE_ANSWER_SHARE:.0%} of the attacked persons the same answer reads *not comparable*: "
        "such a model is not flipped because it does not look at the picture, which is no robustness.",
    ]
    if unknown:
        lines.append(f"- left out (unknown attack kind): {', '.join(f'`{u}`' for u in unknown)}")
    if not_finite:
        lines.append(f"- left out (a figure is NaN or Infinity): {', '.join(f'`{u}`' for u in not_finite)}")
    lines += [
        "",
        "## Reproduce",
        "",
        "Command lines recorded in the runs' `run.json`, then this report:",
        "",
        "```bash",
        *commands,
        f"emotic-mm report runs={root}",
        "```",
    ]
    return "\n".join(lines)


VERDICT_COLUMNS = [
    "comparison",
    "setting",
    "held equal",
    "n",
    "A − B (pts) [95 % CI]",
    "p",
    "verdict",
    "difference detected at",
]


def verdict_rows(summary: pd.DataFrame) -> list[list[str]]:
    """Rows of the verdict table (also printed on the terminal)."""
    rows = []
    for _, r in summary.iterrows():
        at = f" at {r['at']}" if r["at"] else ""
        seeds = f", seeds {seeds_text(r['seeds'])}" if isinstance(r["seeds"], list) else ""
        detected = "; ".join(f"k={d['k']}: {d['verdict']}" for d in r["detected_at"])
        rows.append(
            [
                r["comparison"],
                r["setting"],
                r["held"] or MISSING,
                f"{r['n']}{at}{seeds}",
                difference(r["diff"], r["low"], r["high"]),
                pvalue(r["pvalue"]),
                r["verdict"],
                detected or (MISSING if r["at"] else ""),
            ]
        )  # a row taken at a point: detected nowhere
    return rows


def verdict_section(summary: pd.DataFrame) -> str:
    if summary.empty:
        return (
            "## Which is more robust?\n\nNo two variants, modality sets or algorithms were run in the "
            "same setting (pixel comparisons also need the runs' attack.csv, to pair the persons)."
        )
    return "\n".join(
        [
            "## Which is more robust?",
            "",
            "Each comparison A vs B in its setting, the other keys held equal. Pixel attacks: the difference "
            "of success rates (all persons) on the persons attacked under both, at the largest k, and "
            "every k at which a difference was detected (all k are in *Paired differences* below). `de` "
            "vs `rs` compares attack algorithms: there the verdict says which one finds more.",
            "",
            table(VERDICT_COLUMNS, verdict_rows(summary)),
        ]
    )


def examples_section(examples: list[tuple[str, str]]) -> str:
    """One example picture per setting and arm, copied from the run dirs."""
    lines = [
        "## Examples",
        "",
        "One `examples.png` per setting, model and modality set (its lowest seed), copied from the run dirs.",
    ]
    for caption, path in examples:
        lines += ["", f"### {caption}", "", f"![{caption}]({path})"]
    return "\n".join(lines)
