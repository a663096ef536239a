"""The report hooks of a kind whose runs record a success count per run (poisoning, and any kind
without hooks of its own): the measure and its control pooled per setting and model, models compared,
optional figures of the measure against a setting key, and what the poison cost on clean data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emotic_mm.attacks.registry import AttackKind
from emotic_mm.report import poison_plots
from emotic_mm.report.collect import load_triggered
from emotic_mm.report.hooks import Aggregate, ReportContext
from emotic_mm.report.poison_markdown import Wording, default_wording, poison_section
from emotic_mm.report.poison_tables import poison_comparisons, poison_rates, poison_verdicts


@dataclass(frozen=True)
class RateFigure:
    """The ASR against one setting key (a line per model and other setting), drawn where it varies."""

    x_key: str
    file: str
    xlabel: str
    scale: float = 1.0


@dataclass(frozen=True)
class RatesReport:
    """:class:`~emotic_mm.report.hooks.ReportHooks` of pooled success counts.

    ``wording`` None: worded from the registry entry; ``clean_costs`` None: shown where the runs recorded
    the clean model's mAP; ``per_person``: compare models paired on ``triggered.csv`` where every run
    left one."""

    wording: Wording | None = None
    clean_costs: bool | None = None
    per_person: bool = False
    figures: tuple[RateFigure, ...] = ()

    def check(self, summary: dict[str, Any]) -> list[str]:
        return []

    def read(self, path: Path, summary: dict[str, Any], run_dir: str) -> list[dict[str, Any]]:
        return []

    def aggregate(self, kind: AttackKind, ctx: ReportContext) -> Aggregate:
        runs = ctx.collection.runs
        tab, keys = poison_rates(kind, runs)
        persons = load_triggered(ctx.collection, kind) if self.per_person else None
        comparisons = poison_comparisons(kind, tab, runs, persons)
        costs = bool(tab["clean_map_mean"].notna().any()) if self.clean_costs is None else self.clean_costs
        return Aggregate(
            data={"setting_keys": keys, "rates": tab, "comparisons": comparisons},
            tables={"keys": keys, "rates": tab, "comparisons": comparisons, "clean_costs": costs},
            verdicts=poison_verdicts(comparisons),
            clean_costs=tab if costs else None,
        )

    def plot(self, kind: AttackKind, agg: Aggregate, folder: Path) -> list[tuple[str, str]]:
        tab, keys = agg.tables["rates"], agg.tables["keys"]
        drawn = [
            f
            for f in self.figures
            if f.x_key in keys
            and poison_plots.asr_vs(kind, tab, keys, f.x_key, folder / f.file, f.xlabel, f.scale)
        ]
        return [(f"ASR vs {f.xlabel}", f.file) for f in drawn]

    def section(self, kind: AttackKind, agg: Aggregate, figures: list[tuple[str, str]]) -> str:
        t = agg.tables
        wording = self.wording or default_wording(kind)
        return poison_section(kind, wording, t["rates"], t["comparisons"], figures, t["clean_costs"])


DEFAULT = RatesReport()

BACKDOOR = RatesReport(
    Wording(
        "Attack success rate: share of triggered test persons without the target whose top-1 becomes "
        "the target. The clean model under the same trigger is the control: the gap is what the poison "
        "bought. n = triggered persons × seeds.",
        "triggered persons",
        "ASR, poisoned model (%)",
        "ASR, clean model — control (%)",
    ),
    clean_costs=True,
    per_person=True,
    figures=(
        RateFigure("rate", "asr_vs_rate.png", "poisoned training persons (%)", 100.0),
        RateFigure("pixels", "asr_vs_trigger_size.png", "trigger size (pixels)"),
    ),
)

COLLISION = RatesReport(
    Wording(
        "Share of target persons classified as their base class after training on the poisons (targets "
        "are chosen among persons the clean model does not call the base class). n = targets × seeds.",
        "targets",
        "target success, poisoned model (%)",
    ),
    clean_costs=True,
)
