"""``report.md``: the aggregated tables as GitHub-flavoured Markdown, with the figures linked by
relative path so the report folder can be moved or attached as a whole."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from emotic_mm.attacks.registry import ATTACKS
from emotic_mm.report.tables import COMPARED, ONE_SEED_NOTE

MISSING = "–"


def _nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def pct(mean: Any, std: Any = math.nan, n: Any = None, digits: int = 1) -> str:
    """A rate as ``45.0 ± 5.0 (n=3)`` in %; no ± with fewer than two runs, a dash when nothing was measured."""
    if _nan(mean) or (n is not None and not _nan(n) and int(n) == 0):
        return MISSING
    text = f"{mean * 100:.{digits}f}"
    if not _nan(std) and (n is None or int(n) >= 2):
        text += f" ± {std * 100:.{digits}f}"
    return text + (f" (n={int(n)})" if n is not None and not _nan(n) else "")


def pts(diff: Any) -> str:
    """A difference of rates in percentage points, signed."""
    return MISSING if _nan(diff) else f"{diff * 100:+.1f}"


def number(value: Any, fmt: str = "{:.0f}") -> str:
    return MISSING if _nan(value) else fmt.format(value)


def setting_cell(key: str, value: Any) -> str:
    """A setting value in a column headed by its key: ``yes``/``no`` for flags, ``n/a`` where absent."""
    if _nan(value):
        return "n/a"
    if isinstance(value, (bool, np.bool_)) or value in ("True", "False"):
        return "yes" if value in (True, "True") else "no"
    return f"{value:g}" if isinstance(value, float) else str(value)


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table; ``|`` in cells is escaped so a label cannot break the layout."""
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, columns)) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(map(cell, r)) + " |" for r in rows]
    return "\n".join(lines)


def summary_rows(summary: pd.DataFrame, models: list[str]) -> tuple[list[str], list[list[str]]]:
    """Columns and rows of the main table (also printed on the terminal)."""
    columns = ["setting", "measure", *(f"{m} (%)" for m in models), "joint − baseline (pts)", "verdict"]
    rows = []
    for _, r in summary.iterrows():
        rows.append([r["setting"], r["measure"],
                     *(pct(r.get(f"{m}_mean"), r.get(f"{m}_std"), r.get(f"{m}_n", 0)) for m in models),
                     pts(r["diff"]), r["verdict"]])
    return columns, rows


def header(root: str, runs: pd.DataFrame, models: list[str], generated: str, commands: list[str],
           unknown: list[str]) -> str:
    counts = runs["kind"].value_counts()
    by_kind = ", ".join(f"{ATTACKS.get(k).title.lower()}: {int(counts[k])}" for k in ATTACKS.names() if k in counts)
    seeds = sorted({int(s) for s in pd.to_numeric(runs["seed"], errors="coerce").dropna()})
    lines = [
        "# Robustness report: baseline vs joint embedding",
        "",
        f"- runs folder: `{root}`",
        f"- runs: {len(runs)} ({by_kind})",
        f"- models: {', '.join(models)}",
        f"- seeds: {len(seeds)} ({', '.join(map(str, seeds)) or 'none recorded'})",
        f"- generated: {generated}",
        "- data: [report.json](report.json) (the summary table), [runs.csv](runs.csv) (one row per run, "
        "flattened summary.json)",
    ]
    if unknown:
        lines.append(f"- left out (unknown attack kind): {', '.join(f'`{u}`' for u in unknown)}")
    lines += ["", "## Reproduce", "", "Command lines recorded in the runs' `run.json`, then this report:", "",
              "```bash", *commands, f"emotic-mm report runs={root}", "```"]
    return "\n".join(lines)


def summary_section(summary: pd.DataFrame, models: list[str]) -> str:
    note = ""
    if summary.empty:
        return "## Which variant is more robust?\n\nNo settings."
    n = summary[[f"{m}_n" for m in COMPARED]].min(axis=1)
    if (n < 2).any():
        note = f"\n\nSome settings have a single run per model ({ONE_SEED_NOTE})."
    columns, rows = summary_rows(summary, models)
    return "\n".join([
        "## Which variant is more robust?", "",
        "Each measure is the attacker's success rate (lower = more robust): pixel attacks `success_rate_all`, "
        "backdoor `asr`, feature collision `target_success_rate`. Cells are mean ± std (sample std) across "
        "seeds, in %, with the number of runs; the difference is joint − baseline in percentage points. "
        "*Tie* means the difference is no larger than the larger of the two standard deviations.",
        "", table(columns, rows)]) + note


def pixel_section(tab: pd.DataFrame, keys: list[str]) -> str:
    """Success rate and median queries against k: one row per model and setting, one column per k."""
    setting_cols = [k for k in keys if k != "pixels"]
    ks = sorted(tab["pixels"].dropna().unique())
    head = [*setting_cols, "model"]
    success, queries = [], []
    for values, group in tab.groupby(head, dropna=False, sort=False):
        by_k = group.set_index("pixels")
        first = [*(setting_cell(k, v) for k, v in zip(setting_cols, values[:-1])), values[-1]]
        success.append(first + [pct(*by_k.loc[k, ["mean", "std", "n"]]) if k in by_k.index else MISSING
                                for k in ks])
        queries.append(first + [number(by_k.loc[k, "median_queries"]) if k in by_k.index else MISSING
                                for k in ks])
    k_cols = [f"k={k:g}" for k in ks]
    return "\n".join([
        f"## {ATTACKS.get('pixel').title}", "",
        "Attack success rate (all persons, %) against the pixel budget k, per model and attack surface: "
        "mean ± std across seeds (n runs). The rate on persons whose clean top-1 was correct is in runs.csv "
        "(`success_rate_correct`).", "",
        table(head + k_cols, success), "", "![success rate vs pixels](success_vs_pixels.png)", "",
        "Median queries (model evaluations) to a successful attack, mean across seeds:", "",
        table(head + k_cols, queries)])


def poison_section(kind_name: str, tab: pd.DataFrame) -> str:
    """ASR (backdoor, with its clean-model control) or target success (collision) per setting and model."""
    kind = ATTACKS.get(kind_name)
    if kind.control:
        columns = ["setting", "model", "ASR, poisoned model (%)", "ASR, clean model — control (%)"]
        intro = ("Share of triggered test persons without the target whose top-1 becomes the target. The clean "
                 "model under the same trigger is the control: the gap is what the poison bought.")
    else:
        columns = ["setting", "model", "target success, poisoned model (%)"]
        intro = ("Share of target persons classified as their base class after training on the poisons "
                 "(targets are chosen among persons the clean model does not call the base class).")
    rows = [[r["setting"], r["model"], pct(r["mean"], r["std"], r["n"]),
             *([pct(r["control_mean"])] if kind.control else [])] for _, r in tab.iterrows()]
    plot = ["", "![ASR vs poison rate](asr_vs_rate.png)"] if kind_name == "poison_backdoor" else []
    return "\n".join([f"## {kind.title}", "", intro, "", table(columns, rows), *plot])


def deltas_section(tab: pd.DataFrame) -> str:
    columns = ["setting", "model", "clean mAP (%)", "poisoned mAP (%)", "Δ mAP (pts)", "clean dominant acc (%)",
               "poisoned dominant acc (%)", "Δ dominant acc (pts)", "n"]
    rows = [[r["setting"], r["model"], pct(r["clean_map"], digits=2), pct(r["poisoned_map"], digits=2),
             pts(r["delta_map_mean"]), pct(r["clean_dominant_acc"]), pct(r["poisoned_dominant_acc"]),
             pts(r["delta_dominant_acc_mean"]), int(r["n"])] for _, r in tab.iterrows()]
    return "\n".join([
        "## What poisoning costs on clean data", "",
        "The clean model and the poisoned model on the clean test split (means across seeds). A poison that "
        "leaves these unchanged is one a defender would not notice from accuracy alone.", "",
        table(columns, rows), "", "![clean-metric deltas](clean_metric_deltas.png)"])


def examples_section(examples: list[tuple[str, str]]) -> str:
    lines = ["## Examples", "",
             "One `examples.png` per setting and model (its lowest seed), copied from the run dirs."]
    for caption, path in examples:
        lines += ["", f"### {caption}", "", f"![{caption}]({path})"]
    return "\n".join(lines)
