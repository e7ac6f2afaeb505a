"""A progress bar for long work (export, migrations, replay, reprice, ingest): rich on a terminal, else quiet.

``with progress("exporting", total=n) as advance: advance(k)`` draws a rich bar on stderr
when stdout is a terminal and does nothing otherwise (pipes, CI, files), so output that
is parsed stays clean.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["progress", "show_progress"]


def show_progress() -> bool:
    """True when stdout is a terminal (a person is watching)."""
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


@contextmanager
def progress(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(count)``; a rich bar on stderr on a terminal, a no-op otherwise."""
    if not show_progress():
        yield lambda _count: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)

        def advance(count: int) -> None:
            bar.update(task, advance=count)

        yield advance
