"""The report hooks of a kind whose runs hold a success curve over the pixel budget k (few-pixel
evasion): the curve's counts read from each summary, per-person outcomes from ``attack.csv``, paired
comparisons of arms, the RobustBench-style table with certified accuracy where runs carry certificates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from emotic_mm.attacks.registry import AttackKind
from emotic_mm.report import pixel_plots
from emotic_mm.report.collect import curve_points, load_persons, pixel_budget_problems
from emotic_mm.report.hooks import Aggregate, ReportContext
from emotic_mm.report.pixel_markdown import pixel_section
from emotic_mm.report.pixel_tables import paired_comparisons, pixel_arms, pixel_curve, pixel_verdicts


class PixelReport:
    """:class:`~emotic_mm.report.hooks.ReportHooks` of a pixel-budget curve."""

    def check(self, summary: dict[str, Any]) -> list[str]:
        return pixel_budget_problems(summary)

    def read(self, path: Path, summary: dict[str, Any], run_dir: str) -> list[dict[str, Any]]:
        return curve_points(path, summary, run_dir)

    def aggregate(self, kind: AttackKind, ctx: ReportContext) -> Aggregate:
        runs, persons = ctx.collection.runs, load_persons(ctx.collection)
        curve, keys = pixel_curve(kind, runs, ctx.collection.points, persons)
        arms = pixel_arms(kind, runs, curve, keys)
        paired = paired_comparisons(kind, runs, persons)
        return Aggregate(
            data={"setting_keys": keys, "curve": curve, "arms": arms, "paired": paired},
            tables={
                "keys": keys,
                "curve": curve,
                "arms": arms,
                "paired": paired,
                "certified": ctx.defenses.certified,
                "radii": ctx.defenses.radii,
            },
            verdicts=pixel_verdicts(kind, paired),
        )

    def plot(self, kind: AttackKind, agg: Aggregate, folder: Path) -> list[tuple[str, str]]:
        file = "success_vs_pixels.png"
        drawn = pixel_plots.success_vs_pixels(kind, agg.tables["curve"], agg.tables["keys"], folder / file)
        return [("success vs pixels", file)] if drawn else []

    def section(self, kind: AttackKind, agg: Aggregate, figures: list[tuple[str, str]]) -> str:
        t = agg.tables
        return pixel_section(kind, t["curve"], t["arms"], t["paired"], figures, t["certified"], t["radii"])


PIXEL = PixelReport()
