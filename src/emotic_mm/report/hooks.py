"""The report's extension point: what an attack kind's registry entry says about reading, aggregating,
tabling and plotting its runs (``AttackKind.report``).

The report (:mod:`emotic_mm.stages.report`) calls, for every kind present in the runs and in registry
order: :meth:`ReportHooks.check` and :meth:`~ReportHooks.read` on each summary while collecting, then
:meth:`~ReportHooks.aggregate`, :meth:`~ReportHooks.plot` and :meth:`~ReportHooks.section`. A kind
without hooks of its own gets :data:`emotic_mm.report.rates.DEFAULT`: its measure pooled per setting
and model, models compared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import pandas as pd

from emotic_mm.attacks.registry import AttackKind
from emotic_mm.registry import load_callable

if TYPE_CHECKING:
    from emotic_mm.report.collect import Collection
    from emotic_mm.report.defense_tables import DefenseTables


@dataclass(frozen=True)
class ReportContext:
    """What every kind's aggregation may read: all runs as collected, and the defense tables (computed
    first, as a kind's own table may show them)."""

    collection: Collection
    defenses: DefenseTables


@dataclass
class Aggregate:
    """One kind's aggregated runs.

    ``data`` is its ``report.json`` entry (tables become records); ``tables`` what its plot and section
    read; ``verdicts`` its rows of the verdicts at a glance (:data:`~emotic_mm.report.tables.VERDICT_KEYS`);
    ``clean_costs`` its rows of "what poisoning costs on clean data" (poisoning rates tables), if any."""

    data: dict[str, Any]
    tables: dict[str, Any] = field(default_factory=dict)
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    clean_costs: pd.DataFrame | None = None


@runtime_checkable
class ReportHooks(Protocol):
    """How the report reads, aggregates, tables and plots the runs of one attack kind."""

    def check(self, summary: dict[str, Any]) -> list[str]:
        """Wrong types the generic summary checks cannot see, each as ``key=value (what it should be)``."""

    def read(self, path: Path, summary: dict[str, Any], run_dir: str) -> list[dict[str, Any]]:
        """The run's rows of ``Collection.points`` (per pixel budget k) if its runs hold a curve; a curve
        it cannot use is a ``DataFormatError`` naming ``path``."""

    def aggregate(self, kind: AttackKind, ctx: ReportContext) -> Aggregate:
        """Pool the kind's runs (``ctx.collection.runs[kind == kind.name]``) over seeds and compare arms."""

    def plot(self, kind: AttackKind, agg: Aggregate, folder: Path) -> list[tuple[str, str]]:
        """Draw into ``folder``; return ``(caption, file name)`` of each figure drawn."""

    def section(self, kind: AttackKind, agg: Aggregate, figures: list[tuple[str, str]]) -> str:
        """The kind's ``report.md`` section (``## <kind.title>`` …), linking ``figures``."""


def hooks_of(kind: AttackKind) -> ReportHooks:
    """The kind's report hooks: its entry's ``report`` (an object, or ``"module:attribute"`` of one,
    imported on first use), else the default pooled-rates section."""
    hooks = kind.report if kind.report is not None else "emotic_mm.report.rates:DEFAULT"
    return load_callable(hooks) if isinstance(hooks, str) else hooks
