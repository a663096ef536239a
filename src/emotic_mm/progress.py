"""Rich progress bars and tables for what a person watches; ``logging`` keeps the record."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from emotic_mm.fsutil import is_main_process

console = Console(stderr=True)
log = logging.getLogger(__name__)


@contextmanager
def progress_bar(
    description: str, total: int, unit: str = "items", detail: Callable[[float], str] | None = None
) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``; the bar shows done/total, rate in ``unit``/s, ``detail(done)`` when given (e.g.
    persons done while the bar counts views), elapsed and remaining time. Without a terminal (a batch job's
    log) the main process logs the same figures at every tenth of the way instead."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[cyan]{task.fields[rate]}"),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    shown = console.is_terminal and is_main_process()  # under torchrun one bar, not one per rank
    started, logged = time.monotonic(), [0]
    with Progress(*columns, console=console, transient=False, disable=not shown) as progress:
        task = progress.add_task(
            description, total=total, rate=f"0.0 {unit}/s", detail=detail(0) if detail else ""
        )

        def advance(n: int = 1) -> None:
            progress.advance(task, n)
            done = progress.tasks[task].completed
            speed = progress.tasks[task].speed or 0.0
            progress.update(task, rate=f"{speed:.1f} {unit}/s", detail=detail(done) if detail else "")
            tenth = int(10 * done / max(total, 1))
            if not shown and is_main_process() and tenth > logged[0]:
                logged[0] = tenth
                elapsed = time.monotonic() - started
                left = elapsed * (total - done) / max(done, 1e-9)
                log.info(
                    "%s: %d/%d %s%s, %.1f %s/s, %s elapsed, about %s left",
                    description,
                    done,
                    total,
                    unit,
                    f" ({detail(done)})" if detail else "",
                    done / max(elapsed, 1e-9),
                    unit,
                    _duration(elapsed),
                    _duration(left),
                )

        yield advance


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def share_text(rate: float | None, of: int) -> str:
    """``0.250 of 48``, or a dash when nothing was measured (no person qualified)."""
    return f"{rate:.3f} of {of}" if rate is not None else f"- (none of {of})"


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    table = Table(title=title)
    for c in columns:
        table.add_column(str(c), justify="right" if c != columns[0] else "left")
    for row in rows:
        table.add_row(*(str(v) for v in row))
    Console().print(table)
