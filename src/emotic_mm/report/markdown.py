"""``report.md``: the aggregated tables as GitHub-flavoured Markdown, with the figures linked by
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
from emotic_mm.measures import MISSING, ONE_ANSWER_SHARE, median_pixels
from emotic_mm.report import stats


def _nan(value: Any) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and math.isnan(value))


def pct(value: Any, digits: int = 1) -> str:
    """A fraction as a percentage, a dash when nothing was measured."""
    return MISSING if _nan(value) else f"{value * 100:.{digits}f}"


def rate(value: Any, low: Any, high: Any, std: Any = math.nan, seeds: Any = 0, digits: int = 1) -> str:
    """``12.3 [10.1, 14.9] sd 1.2``: pooled rate, Wilson interval, and the std of the per-seed rates (with two
    or more seeds) — all in %."""
    if _nan(value):
        return MISSING
    text = f"{pct(value, digits)} [{pct(low, digits)}, {pct(high, digits)}]" if not _nan(low) else pct(value, digits)
    if not _nan(seeds) and int(seeds) >= 2 and not _nan(std):
        text += f" sd {std * 100:.{digits}f}"
    return text


def pts(diff: Any) -> str:
    """A difference of rates in percentage points, signed."""
    return MISSING if _nan(diff) else f"{diff * 100:+.1f}"


def difference(diff: Any, low: Any, high: Any) -> str:
    """``+3.1 [+0.5, +5.8]``: A − B in points with its 95 % interval."""
    if _nan(diff):
        return MISSING
    return f"{pts(diff)} [{pts(low)}, {pts(high)}]" if not _nan(low) else pts(diff)


def pvalue(p: Any) -> str:
    if _nan(p):
        return MISSING
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def number(value: Any, fmt: str = "{:.0f}") -> str:
    return MISSING if _nan(value) else fmt.format(value)


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
def header(root: str, runs: pd.DataFrame, models: list[str], generated: str, commands: list[str],
           unknown: list[str], not_finite: Sequence[str] = ()) -> str:
    counts = runs["kind"].value_counts()
    by_kind = ", ".join(f"{ATTACKS.get(k).title.lower()}: {int(counts[k])}" for k in ATTACKS.names() if k in counts)
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
        "- data: [report.json](report.json) (every number of this page), [runs.csv](runs.csv) (one row per run, "
        "flattened summary.json)",
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
        f"{ONE_ANSWER_SHARE:.0%} of the attacked persons the same answer reads *not comparable*: such a model is "
        "not flipped because it does not look at the picture, which is no robustness.",
    ]
    if unknown:
        lines.append(f"- left out (unknown attack kind): {', '.join(f'`{u}`' for u in unknown)}")
    if not_finite:
        lines.append(f"- left out (a figure is NaN or Infinity): {', '.join(f'`{u}`' for u in not_finite)}")
    lines += ["", "## Reproduce", "", "Command lines recorded in the runs' `run.json`, then this report:", "",
              "```bash", *commands, f"emotic-mm report runs={root}", "```"]
    return "\n".join(lines)


VERDICT_COLUMNS = ["comparison", "setting", "held equal", "n", "A − B (pts) [95 % CI]", "p", "verdict",
                   "difference detected at"]


def verdict_rows(summary: pd.DataFrame) -> list[list[str]]:
    """Rows of the verdict table (also printed on the terminal)."""
    rows = []
    for _, r in summary.iterrows():
        at = f" at {r['at']}" if r["at"] else ""
        seeds = f", seeds {seeds_text(r['seeds'])}" if isinstance(r["seeds"], list) else ""
        detected = "; ".join(f"k={d['k']}: {d['verdict']}" for d in r["detected_at"]) if r["kind"] == "pixel" else ""
        rows.append([r["comparison"], r["setting"], r["held"] or MISSING, f"{r['n']}{at}{seeds}",
                     difference(r["diff"], r["low"], r["high"]), pvalue(r["pvalue"]), r["verdict"],
                     detected or (MISSING if r["kind"] == "pixel" else "")])
    return rows


def verdict_section(summary: pd.DataFrame) -> str:
    if summary.empty:
        return ("## Which is more robust?\n\nNo two variants, modality sets or algorithms were run in the same setting "
                "(pixel comparisons also need the runs' attack.csv, to pair the persons).")
    return "\n".join([
        "## Which is more robust?", "",
        "Each comparison A vs B in its setting, the other keys held equal. Pixel attacks: the difference of "
        "success rates (all persons) on the persons attacked under both, at the largest k, and every k at which "
        "a difference was detected (all k are in *Paired differences* below). `de` vs `rs` compares attack "
        "algorithms: there the verdict says which one finds more.", "",
        table(VERDICT_COLUMNS, verdict_rows(summary))])


# --------------------------------------------------------------------------- pixel evasion
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
        if not _nan(r[n_column]) and r[n_column] != base_n:  # a k measured on other persons than the first
            text += f" (n={int(r[n_column])})"
        cells.append(text)
    return cells


def rate_table(curve: pd.DataFrame, name: str) -> str:
    """Rate ``name`` at every k, one row per setting and arm, with n (persons × seeds) and seeds."""
    ks = sorted(int(k) for k in curve["k"].unique())
    rows = []
    for setting, arm, by_k in _by_arm(curve):
        first = by_k.iloc[0]
        rows.append([setting, arm, n_text(first["n_by_seed"], "persons"), seeds_text(first["seeds"]),
                     *_k_cells(by_k, ks, name, f"{name}_n", first[f"{name}_n"])])
    return table(["setting", "model · modalities", "n", "seeds", *(f"k={k}" for k in ks)], rows)


def pixel_section(curve: pd.DataFrame, arms: pd.DataFrame, paired: pd.DataFrame, figure: str | None,
                  certified: pd.DataFrame | None = None, radii: Sequence[int] = ()) -> str:
    ks = sorted(int(k) for k in curve["k"].unique())
    correct = []
    for setting, arm, by_k in _by_arm(curve):
        first = by_k.iloc[0]
        n = first["success_correct_n"]
        correct.append([setting, arm, MISSING if _nan(n) else f"{int(n)} persons", seeds_text(first["seeds"]),
                        *_k_cells(by_k, ks, "success_correct", "success_correct_n", n)])
    queries = []
    for setting, arm, by_k in _by_arm(curve):
        queries.append([setting, arm, *(f"{number(by_k.loc[k, 'mean_queries'])} / {number(by_k.loc[k, 'median_queries'])}"
                                        if k in by_k.index else MISSING for k in ks)])
    k_cols = [f"k={k}" for k in ks]
    lines = [
        f"## {ATTACKS.get('pixel').title}", "",
        "### Success against the pixel budget k", "",
        "Share of attacked persons whose top-1 the attack changed (untargeted) or made the target (targeted), "
        "within k pixels: pooled % [Wilson 95 %] sd over seeds. Each person is attacked once along the "
        "schedule of k, so a person fooled at k counts at every larger k.", "",
        rate_table(curve, "success")]
    if figure:
        lines += ["", f"![success vs pixels]({figure})"]
    lines += [
        "", "### Success on the persons the clean model got right", "",
        "The same, over the persons whose clean top-1 was in their label set (a person already misclassified "
        "is not \"fooled\"); n is their count over all seeds.", "",
        table(["setting", "model · modalities", "n", "seeds", *k_cols], correct),
        "", "### Clean and robust accuracy (RobustBench-style)", "",
        robustbench_table(curve, arms, certified, radii),
        "", "### Queries to success", "",
        "Model evaluations per successful person, mean / median over the fooled persons of all seeds "
        "(cumulative along the schedule of k).", "",
        table(["setting", "model · modalities", *k_cols], queries),
        "", paired_section(paired)]
    return "\n".join(lines)


def robustbench_table(curve: pd.DataFrame, arms: pd.DataFrame, certified: pd.DataFrame | None = None,
                      radii: Sequence[int] = ()) -> str:
    """Clean mAP and clean dominant accuracy, then robust dominant accuracy at each k, median queries at
    the largest k and median pixels needed — one row per setting and arm (a defense is part of the
    setting) — and, where any row has certificates, its certified accuracy at each radius."""
    ks = sorted(int(k) for k in curve["k"].unique())
    rows = []
    by_arm = {(s, a): by_k for s, a, by_k in _by_arm(curve)}
    cert = {} if certified is None or certified.empty else {(r["setting"], r["arm"]): r for _, r in certified.iterrows()}
    for _, r in arms.iterrows():
        by_k = by_arm[(r["setting"], r["arm"])]
        last = by_k.iloc[-1]
        cmap = MISSING if _nan(r["clean_map_mean"]) else (
            f"{pct(r['clean_map_mean'], 2)}" + (f" sd {r['clean_map_std'] * 100:.2f}" if r["clean_map_seeds"] >= 2 else "")
            + f" ({int(r['clean_map_seeds'])} seed{'s' if r['clean_map_seeds'] != 1 else ''})")
        rows.append([r["setting"], r["arm"], n_text(r["n_by_seed"], "persons"), seeds_text(r["seeds"]), cmap,
                     rate(r["clean"], r["clean_low"], r["clean_high"], r["clean_seed_std"], r["clean_seeds"]),
                     *_k_cells(by_k, ks, "robust", "robust_n", r["clean_n"]),
                     f"{number(last['median_queries'])} (k={int(by_k.index[-1])})",
                     f"{median_pixels(r['median_pixels_needed_all'], r['largest_k'])} / "
                     f"{median_pixels(r['median_pixels_needed_correct'], r['largest_k'])}"])
        if cert:
            c = cert.get((r["setting"], r["arm"]))
            rows[-1].append(MISSING if c is None else " / ".join(pct(c[f"r{x}"]) for x in radii))
    columns = ["setting", "model · modalities", "n", "seeds", "clean mAP", "clean dominant acc",
               *(f"robust acc k={k}" for k in ks), "median queries", "median pixels needed (all / clean-correct)"]
    if cert:
        columns.append(f"certified acc r={' / '.join(map(str, radii))} (%, see Defenses)")
    return "\n".join([
        "Clean dominant accuracy = top-1 in the label set; robust dominant accuracy = top-1 still in the label "
        "set under the attack with k pixels (pooled % [Wilson 95 %] sd over seeds). Clean mAP: macro AP over "
        "the 26 categories (torchmetrics) of the clean model on the test split, mean over seeds, where a run "
        "recorded it (`clean_map`) or a poisoning run measured the same clean checkpoint. Median pixels "
        "needed: the smallest k that fooled a person (the L0 size of its minimal perturbation found), median "
        "over persons; `> k` when the median person was not fooled within the largest k.", "",
        table(columns, rows)])


PAIRED_COLUMNS = ["comparison (A vs B)", "setting", "held equal", "k", "n pairs", "seeds", "A (%)", "B (%)",
                  "A − B (pts) [95 % CI]", "McNemar p (A only / B only)", "per-seed A − B (pts)", "verdict"]


def paired_section(paired: pd.DataFrame) -> str:
    head = "### Paired differences"
    if paired.empty:
        return (f"{head}\n\nNo two variants, modality sets or algorithms were attacked on the same persons in one "
                "setting (or the runs have no attack.csv).")
    rows = []
    for _, r in paired.iterrows():
        seed_diffs = ", ".join(f"{seed}: {pts(v)}" for seed, v in r["seed_diffs"].items())
        rows.append([f"{r['a']} vs {r['b']}", r["setting"], r["held"] or MISSING, int(r["k"]),
                     n_text(r["n_by_seed"], "pairs"), seeds_text(r["seeds"]), pct(r["rate_a"]), pct(r["rate_b"]),
                     difference(r["diff"], r["low"], r["high"]),
                     f"{pvalue(r['pvalue'])} ({r['only_a']} / {r['only_b']})",
                     seed_diffs, r["verdict"]])
    return "\n".join([
        head, "",
        "Success rate of A minus that of B over the persons attacked under both (matched on seed and person "
        "index), with the paired-bootstrap 95 % interval and McNemar's p on the discordant pairs (persons only A, "
        "or only B, was fooled on). Model and modality comparisons: negative = A more robust. Algorithm "
        "comparisons: positive = A finds more.", "",
        table(PAIRED_COLUMNS, rows)])


# --------------------------------------------------------------------------- poisoning
def poison_section(kind_name: str, tab: pd.DataFrame, comparisons: pd.DataFrame, figures: list[tuple[str, str]]) -> str:
    """Success (and clean-model control) per setting and model, pooled over seeds; the model comparison."""
    kind = ATTACKS.get(kind_name)
    unit = "triggered persons" if kind.control else "targets"
    if kind.control:
        columns = ["setting", "model", "n", "seeds", "ASR, poisoned model (%)", "ASR, clean model — control (%)",
                   "clean → poisoned mAP (%)", "clean → poisoned dominant acc (%)"]
        intro = ("Attack success rate: share of triggered test persons without the target whose top-1 becomes the "
                 "target. The clean model under the same trigger is the control: the gap is what the poison bought. "
                 "n = triggered persons × seeds.")
    else:
        columns = ["setting", "model", "n", "seeds", "target success, poisoned model (%)",
                   "clean → poisoned mAP (%)", "clean → poisoned dominant acc (%)"]
        intro = ("Share of target persons classified as their base class after training on the poisons (targets are "
                 "chosen among persons the clean model does not call the base class). n = targets × seeds.")
    rows = []
    for _, r in tab.iterrows():
        cells = [r["setting"], r["model"], n_text(r["n_by_seed"], unit), seeds_text(r["seeds"]),
                 rate(r["success"], r["success_low"], r["success_high"], r["success_seed_std"], r["success_seeds"])]
        if kind.control:
            cells.append(rate(r["control"], r["control_low"], r["control_high"], r["control_seed_std"], r["control_seeds"]))
        cells += [f"{pct(r['clean_map_mean'], 2)} → {pct(r['poisoned_map_mean'], 2)}",
                  f"{pct(r['clean_dominant_acc_mean'])} → {pct(r['poisoned_dominant_acc_mean'])}"]
        rows.append(cells)
    lines = [f"## {kind.title}", "", intro, "", table(columns, rows)]
    for caption, path in figures:
        lines += ["", f"![{caption}]({path})"]
    if not comparisons.empty:
        comp_rows = [[f"{r['a']} vs {r['b']}", r["setting"],
                      (f"{int(r['n_a'])} pairs" if r["method"] == "paired" else f"{int(r['n_a'])} vs {int(r['n_b'])}")
                      if not (_nan(r["n_a"]) or _nan(r["n_b"])) else MISSING, r["method"], pct(r["rate_a"]), pct(r["rate_b"]),
                      difference(r["diff"], r["low"], r["high"]), pvalue(r["pvalue"]), r["verdict"]]
                     for _, r in comparisons.iterrows()]
        lines += ["", "Between models (negative = A more robust). Paired where both models' runs left per-person "
                  "outcomes (the same triggered persons under the same seed): paired-bootstrap 95 % interval and "
                  "McNemar's exact p; otherwise unpaired from the counts: Newcombe 95 % interval, Fisher's exact p.", "",
                  table(["comparison (A vs B)", "setting", "n", "method", "A (%)", "B (%)", "A − B (pts) [95 % CI]", "p",
                         "verdict"], comp_rows)]
    return "\n".join(lines)


def defense_section(certified: pd.DataFrame, radii: list[int], poison: pd.DataFrame) -> str:
    """Certified accuracy with its soundness check, and what each poisoning defense detected and bought."""
    lines = ["## Defenses"]
    if not certified.empty:
        rows = []
        for _, r in certified.iterrows():
            sound = (MISSING if _nan(r["checked"]) else
                     f"{int(r['violations'])} of {int(r['checked'])}" + ("" if r["violations"] == 0 else " — WRONG"))
            rows.append([r["setting"], r["arm"], n_text(r["n_by_seed"], "persons"), seeds_text(r["seeds"]),
                         *(rate(r[f"r{x}"], r[f"r{x}_low"], r[f"r{x}_high"], r[f"r{x}_seed_std"], r[f"r{x}_seeds"])
                           for x in radii),
                         rate(r["abstained"], r["abstained_low"], r["abstained_high"]), sound])
        lines += ["", "### Certified few-pixel robustness (randomized ablation)", "",
                  "Certified dominant accuracy: share of the attacked persons whose certified prediction (majority "
                  "vote over ablated views) is in their label set with an L0 radius of at least r pixels of the "
                  "picture the model sees (pooled % [Wilson 95 %]). Soundness: (person, k) pairs with k ≤ the "
                  "person's radius that the attack on the vote classifier fooled, of those checked — any "
                  "non-zero count means the certificate or its implementation is wrong.", "",
                  table(["setting", "model · modalities", "n", "seeds", *(f"certified r={x}" for x in radii),
                         "abstained", "soundness (fooled within radius)"], rows)]
    if not poison.empty:
        rows = []
        for _, r in poison.iterrows():
            after = rate(r["asr_after"], r["asr_after_low"], r["asr_after_high"], r["asr_after_seed_std"], r["asr_after_seeds"])
            rows.append([r["setting"], r["model"], seeds_text(r["seeds"]),
                         rate(r["tpr"], r["tpr_low"], r["tpr_high"]) + ("" if _nan(r["tpr_n"]) else f" (n {int(r['tpr_n'])})"),
                         rate(r["fpr"], r["fpr_low"], r["fpr_high"]) + ("" if _nan(r["fpr_n"]) else f" (n {int(r['fpr_n'])})"),
                         rate(r["asr"], r["asr_low"], r["asr_high"], r["asr_seed_std"], r["asr_seeds"]), after,
                         f"{pct(r['clean_map_mean'], 2)} → {pct(r['map_after_mean'], 2)}",
                         rate(r["far"], r["far_low"], r["far_high"]) + ("" if _nan(r["far_n"]) else f" (n {int(r['far_n'])})"),
                         rate(r["frr"], r["frr_low"], r["frr_high"]) + ("" if _nan(r["frr_n"]) else f" (n {int(r['frr_n'])})")])
        lines += ["", "### Poisoning defenses", "",
                  "Detection on the poisoned training set (spectral signatures, activation clustering): TPR over the "
                  "poisoned rows and FPR over the clean ones; then ASR on the poisoned model and after dropping the "
                  "flagged rows and retraining, with the clean test mAP of the clean → defended model. STRIP at "
                  "test time: false acceptance of triggered persons at the threshold set for its false-rejection "
                  "target on held-out val persons, and the false rejection it then had on clean test persons. "
                  "All pooled % [Wilson 95 %] over seeds; a dash where the defense does not act.", "",
                  table(["setting", "model", "seeds", "detection TPR (%)", "detection FPR (%)", "ASR, poisoned (%)",
                         "ASR after defense (%)", "clean → defended mAP (%)", "STRIP false acceptance (%)",
                         "STRIP false rejection (%)"], rows)]
    return "\n".join(lines) if len(lines) > 1 else ""


def deltas_section(tab: pd.DataFrame, figure: str | None) -> str:
    columns = ["setting", "model", "seeds", "clean mAP (%)", "poisoned mAP (%)", "Δ mAP (pts)", "clean dominant acc (%)",
               "poisoned dominant acc (%)", "Δ dominant acc (pts)"]

    def delta(mean: Any, std: Any, n: Any) -> str:
        return pts(mean) + (f" sd {std * 100:.1f}" if not _nan(std) and not _nan(n) and n >= 2 else "")

    rows = [[r["setting"], r["model"], seeds_text(r["seeds"]), pct(r["clean_map_mean"], 2), pct(r["poisoned_map_mean"], 2),
             delta(r["delta_map_mean"], r["delta_map_std"], r["delta_map_seeds"]), pct(r["clean_dominant_acc_mean"]),
             pct(r["poisoned_dominant_acc_mean"]),
             delta(r["delta_dominant_acc_mean"], r["delta_dominant_acc_std"], r["delta_dominant_acc_seeds"])]
            for _, r in tab.iterrows()]
    lines = [
        "## What poisoning costs on clean data", "",
        "The clean model and the poisoned model on the clean test split: means over seeds (sd with two or more). "
        "A poison that leaves these unchanged is one a defender would not notice from accuracy alone.", "",
        table(columns, rows)]
    if figure:
        lines += ["", f"![clean-metric deltas]({figure})"]
    return "\n".join(lines)


def examples_section(examples: list[tuple[str, str]]) -> str:
    lines = ["## Examples", "",
             "One `examples.png` per setting, model and modality set (its lowest seed), copied from the run dirs."]
    for caption, path in examples:
        lines += ["", f"### {caption}", "", f"![{caption}]({path})"]
    return "\n".join(lines)
