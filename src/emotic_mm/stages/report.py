"""``emotic-mm report runs=multirun/<date>/<time>``: how robust each variant is, and which is more robust.

Recipe: find every attack/poison run dir under ``runs`` (any depth) → for each attack kind present, in
registry order, its report hooks (:mod:`emotic_mm.report.hooks`) pool each setting's rates over seeds
with Wilson intervals and compare variants, modality sets and algorithms (paired on the same persons:
bootstrap, McNemar; by counts: Newcombe, Fisher), draw its figures and write its section → the shared
sections (verdicts, clean-data costs, defenses, examples) → write ``report.md``, ``report.json`` (every
number of the page, so a later report can be compared with it), ``runs.csv`` (one row per run) and the
PNGs into ``out`` (default ``<runs>/report``), built in a hidden sibling folder and renamed into place at
the end, so an interrupted report never leaves a half-written folder → print the verdicts.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from emotic_mm.attacks.registry import ATTACKS
from emotic_mm.errors import ConfigError, DataFormatError
from emotic_mm.fsutil import atomic_dir, check_replaceable, write_json_atomic, write_text_atomic
from emotic_mm.locks import output_lock
from emotic_mm.progress import print_table
from emotic_mm.report import markdown as md
from emotic_mm.report import plots, poison_markdown, poison_plots, stats
from emotic_mm.report.collect import load_runs
from emotic_mm.report.defense_markdown import defense_section
from emotic_mm.report.defense_tables import defense_tables
from emotic_mm.report.hooks import ReportContext, hooks_of
from emotic_mm.report.tables import label_runs, models_in, plain, verdict_summary
from emotic_mm.runinfo import record_run

log = logging.getLogger(__name__)


def runs_folder(cfg: DictConfig) -> Path:
    """``cfg.runs`` as an existing folder, or a :class:`ConfigError` that says what to pass."""
    value = None if OmegaConf.is_missing(cfg, "runs") else cfg.runs
    if value in (None, ""):
        raise ConfigError(
            "runs is not set: pass runs=multirun/<date>/<time> (a folder of attack or poison runs)"
        )
    root = Path(str(value))
    if not root.exists():
        raise ConfigError(f"runs folder not found: {root}")
    if not root.is_dir():
        raise ConfigError(f"runs={root} is not a folder")
    return root


def output_folder(cfg: DictConfig, root: Path) -> Path:
    """``cfg.out`` (default ``<runs>/report``), replaced only when it is an earlier report, empty or absent
    (else ``overwrite=true``), and never the runs folder or a folder holding it."""
    out = Path(str(cfg.out)) if cfg.get("out") not in (None, "") else root / "report"
    overwrite = cfg.get("overwrite", False)
    check_replaceable(
        out,
        key="out",
        ours=lambda p: p.is_dir() and (p / "report.md").is_file(),
        what_ours="an earlier report (no report.md)",
        protect=[root, Path.cwd()],
        overwrite=overwrite,
    )
    return out


METHODS = {
    "rate": (
        "pooled over seeds (n = persons x seeds); Wilson 95 % interval; seed_mean/seed_std: per-seed rates"
    ),
    "paired_difference": f"A - B over persons matched on (seed, index); percentile paired bootstrap, "
    f"{stats.RESAMPLES} resamples of persons within each seed, numpy seed {stats.BOOTSTRAP_SEED}; "
    "McNemar exact test on the discordant pairs",
    "unpaired_difference": "A - B of pooled counts; Newcombe hybrid score 95 % interval; Fisher exact test "
    "(poisoning comparisons whose runs left no per-person triggered.csv)",
    "paired_poisoning_difference": (
        "backdoor runs with triggered.csv: as paired_difference, over the triggered "
        "persons matched on (seed, index)"
    ),
    "verdict": f"'A more robust' / 'B more robust' when the 95 % interval excludes 0 and p < {stats.ALPHA}; "
    f"else '{stats.NO_DIFFERENCE}'",
    "unit": "fractions (0-1); attacker success: lower = more robust",
    "median_pixels_needed": (
        "median over persons of the smallest k that fooled them; 'inf' = more than largest_k"
    ),
}


def report(cfg: DictConfig) -> dict[str, Any]:
    """Aggregate the runs under ``cfg.runs`` into ``cfg.out``; returns what ``report.json`` holds."""
    root = runs_folder(cfg)
    with output_lock(output_folder(cfg, root), "out"):  # one report at a time into a folder
        return _report(cfg, root, output_folder(cfg, root))


def _report(cfg: DictConfig, root: Path, out: Path) -> dict[str, Any]:
    collection = load_runs(root)
    if collection.runs.empty:
        bad = collection.not_finite
        left = f" (left out, figures not finite: {', '.join(bad)})" if bad else ""
        raise DataFormatError(f"no attack or poison runs (summary.json) under {root}{left}")
    runs = label_runs(collection.runs)
    models = models_in(runs)
    generated = time.strftime("%Y-%m-%d %H:%M:%S %z")
    seeds = sorted({int(s) for s in pd.to_numeric(runs["seed"], errors="coerce").dropna()})
    present = set(runs["kind"])
    data: dict[str, Any] = {
        "runs_dir": str(root),
        "generated": generated,
        "runs": int(len(runs)),
        "runs_by_kind": {k: int(v) for k, v in runs["kind"].value_counts().items()},
        "models": models,
        "seeds": seeds,
        "commands": collection.commands,
        "methods": METHODS,
        "measures": {k.name: k.measure for k in ATTACKS},
        "left_out": {"unknown_kind": collection.unknown, "not_finite": collection.not_finite},
    }
    with atomic_dir(out) as tmp:
        defenses = defense_tables(collection.runs)
        context = ReportContext(collection, defenses)
        sections, verdicts, costs = [], [], []
        for kind in ATTACKS:
            if kind.name not in present:
                continue
            hooks = hooks_of(kind)
            aggregate = hooks.aggregate(kind, context)
            sections.append(hooks.section(kind, aggregate, hooks.plot(kind, aggregate, tmp)))
            data[kind.name] = plain(aggregate.data)
            verdicts += aggregate.verdicts
            if aggregate.clean_costs is not None:
                costs.append(aggregate.clean_costs)
        if costs:
            deltas = pd.concat(costs, ignore_index=True)
            figure = "clean_metric_deltas.png"
            drawn = poison_plots.clean_metric_deltas(deltas, tmp / figure)
            sections.append(poison_markdown.deltas_section(deltas, figure if drawn else None))
        if not defenses.empty:
            sections.append(defense_section(defenses))
            data["defenses"] = plain(
                {"certified": defenses.certified, "radii": defenses.radii, "poisoning": defenses.poisoning}
            )
        summary = verdict_summary(verdicts)
        data["verdicts"] = plain(summary)
        page = [
            md.header(
                str(root),
                runs,
                models,
                generated,
                collection.commands,
                collection.unknown,
                collection.not_finite,
            ),
            md.verdict_section(summary),
            *sections,
            md.examples_section(plots.copy_examples(runs, root, tmp)),
        ]
        write_text_atomic(tmp / "report.md", "\n\n".join(page) + "\n")
        write_json_atomic(tmp / "report.json", data)
        runs.to_csv(tmp / "runs.csv", index=False)
    print_table(
        f"robustness verdicts · {len(runs)} runs under {root}", md.VERDICT_COLUMNS, md.verdict_rows(summary)
    )
    log.info("report written to %s", out / "report.md")
    return data


def main(cfg: DictConfig) -> dict[str, Any]:
    """Hydra entry point: record the run (run.json, config.yaml in outputs/report/...), then report."""
    record_run("report", cfg, None)
    return report(cfg)
