"""``emotic-mm report runs=multirun/<date>/<time>``: which variant is more robust, and by how much.

Recipe: find every attack/poison run dir under ``runs`` (any depth) → aggregate each setting across seeds
per model → write ``report.md``, ``report.json`` (the summary table as data), ``runs.csv`` (one row per
run) and the PNGs into ``out`` (default ``<runs>/report``), built in a hidden sibling folder and renamed
into place at the end, so an interrupted report never leaves a half-written folder → print the summary.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from emotic_mm.errors import ConfigError, DataFormatError
from emotic_mm.fsutil import atomic_dir, check_replaceable, write_json_atomic, write_text_atomic
from emotic_mm.progress import print_table
from emotic_mm.report import markdown as md
from emotic_mm.report import plots
from emotic_mm.attacks.registry import ATTACKS
from emotic_mm.report.collect import load_runs
from emotic_mm.report.tables import aggregate, label_runs, models_in, pixel_table, poison_table
from emotic_mm.runinfo import record_run

log = logging.getLogger(__name__)


def runs_folder(cfg: DictConfig) -> Path:
    """``cfg.runs`` as an existing folder, or a :class:`ConfigError` that says what to pass."""
    value = None if OmegaConf.is_missing(cfg, "runs") else cfg.runs
    if value in (None, ""):
        raise ConfigError("runs is not set: pass runs=multirun/<date>/<time> (a folder of attack or poison runs)")
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
    if not isinstance(overwrite, bool):
        raise ConfigError(f"overwrite={overwrite!r} must be true or false")
    check_replaceable(out, key="out", ours=lambda p: p.is_dir() and (p / "report.md").is_file(),
                      what_ours="an earlier report (no report.md)", protect=[root, Path.cwd()], overwrite=overwrite)
    return out


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars to Python, NaN to null."""
    if hasattr(value, "item"):
        value = value.item()
    return None if isinstance(value, float) and math.isnan(value) else value


def summary_records(summary: pd.DataFrame, models: list[str]) -> list[dict[str, Any]]:
    """The summary table as data: per setting, each model's mean/std/n, the difference and the verdict."""
    records = []
    for _, r in summary.iterrows():
        records.append({
            "kind": r["kind"], "setting": r["setting"],
            "settings": {k: _plain(v) for k, v in r["settings"].items()}, "measure": r["measure"],
            "models": {m: {s: _plain(r.get(f"{m}_{s}")) for s in ("mean", "std", "n")} for m in models},
            "diff_joint_minus_baseline": _plain(r["diff"]), "verdict": r["verdict"],
        })
    for rec in records:
        for stats in rec["models"].values():
            stats["n"] = int(stats["n"]) if stats["n"] is not None else 0
    return records


def report(cfg: DictConfig) -> dict[str, Any]:
    """Aggregate the runs under ``cfg.runs`` into ``cfg.out``; returns what ``report.json`` holds."""
    root = runs_folder(cfg)
    out = output_folder(cfg, root)
    collection = load_runs(root)
    if collection.runs.empty:
        raise DataFormatError(f"no attack or poison runs (summary.json) under {root}")
    runs = label_runs(collection.runs)
    summary = aggregate(collection.runs)
    models = models_in(runs)
    generated = time.strftime("%Y-%m-%d %H:%M:%S %z")
    seeds = sorted({int(s) for s in pd.to_numeric(runs["seed"], errors="coerce").dropna()})
    data = {
        "runs_dir": str(root), "generated": generated, "runs": int(len(runs)),
        "runs_by_kind": {k: int(v) for k, v in runs["kind"].value_counts().items()},
        "models": models, "seeds": seeds,
        "measures": {k.name: k.measure for k in ATTACKS},
        "unit": "fractions of persons (0-1); lower = more robust; diff = joint - baseline",
        "summary": summary_records(summary, models),
    }
    with atomic_dir(out) as tmp:
        sections = [md.header(str(root), runs, models, generated, collection.commands, collection.unknown),
                    md.summary_section(summary, models)]
        sections += _kind_sections(runs, tmp)
        sections.append(md.examples_section(plots.copy_examples(runs, root, tmp)))
        write_text_atomic(tmp / "report.md", "\n\n".join(sections) + "\n")
        write_json_atomic(tmp / "report.json", data)
        runs.to_csv(tmp / "runs.csv", index=False)
    columns, rows = md.summary_rows(summary, models)
    print_table(f"robustness: baseline vs joint · {len(runs)} runs under {root}", columns, rows)
    log.info("report written to %s", out / "report.md")
    return data


def _kind_sections(runs: pd.DataFrame, out: Path) -> list[str]:
    """The per-kind sections and their figures, for the kinds present."""
    present = set(runs["kind"])
    sections = []
    if "pixel" in present:
        tab, keys = pixel_table(runs)
        plots.success_vs_pixels(tab, keys, out / "success_vs_pixels.png")
        sections.append(md.pixel_section(tab, keys))
    poisoned = []
    if "poison_backdoor" in present:
        tab, keys = poison_table(runs, "poison_backdoor")
        plots.asr_vs_rate(tab, keys, out / "asr_vs_rate.png")
        sections.append(md.poison_section("poison_backdoor", tab))
        poisoned.append(tab)
    if "poison_collision" in present:
        tab, _ = poison_table(runs, "poison_collision")
        sections.append(md.poison_section("poison_collision", tab))
        poisoned.append(tab)
    if poisoned:
        deltas = pd.concat(poisoned, ignore_index=True)[
            ["setting", "model", "n", "clean_map", "poisoned_map", "delta_map_mean", "delta_map_std",
             "clean_dominant_acc", "poisoned_dominant_acc", "delta_dominant_acc_mean", "delta_dominant_acc_std"]]
        plots.clean_metric_deltas(deltas, out / "clean_metric_deltas.png")
        sections.append(md.deltas_section(deltas))
    return sections


def main(cfg: DictConfig) -> dict[str, Any]:
    """Hydra entry point: record the run (run.json, config.yaml in outputs/report/...), then report."""
    record_run("report", cfg, None)
    return report(cfg)
