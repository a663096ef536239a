"""Rich progress bars and tables for what a person watches; ``logging`` keeps the record."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.table import Table

from emotic_mm.fsutil import is_main_process

console = Console(stderr=True)


@contextmanager
def progress_bar(description: str, total: int, unit: str = "items") -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``; the bar shows done/total, rate in ``unit``/s, elapsed and remaining time."""
    columns = (
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("[cyan]{task.fields[rate]}"),
        TimeElapsedColumn(), TimeRemainingColumn(),
    )
    # under torchrun one bar, not one per rank
    with Progress(*columns, console=console, transient=False,
                  disable=not (console.is_terminal and is_main_process())) as progress:
        task = progress.add_task(description, total=total, rate=f"0.0 {unit}/s")

        def advance(n: int = 1) -> None:
            progress.advance(task, n)
            speed = progress.tasks[task].speed or 0.0
            progress.update(task, rate=f"{speed:.1f} {unit}/s")

        yield advance


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
