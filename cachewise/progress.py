"""A progress bar for long work (export, migrations, replay, reprice, ingest): rich on a terminal, else quiet.

``with progress("exporting", total=n) as advance: advance(k)`` draws a rich bar on stderr
when stdout is a terminal and does nothing otherwise (pipes, CI, files), so output that
is parsed stays clean. ``CACHEWISE_PROGRESS=1`` draws the bar anyway (as if on a
terminal), ``CACHEWISE_PROGRESS=0`` never draws it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["ENV_PROGRESS", "progress", "show_progress"]

ENV_PROGRESS = "CACHEWISE_PROGRESS"


def _forced() -> bool | None:
    value = os.environ.get(ENV_PROGRESS, "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    return None


def show_progress() -> bool:
    """True when stdout is a terminal (a person is watching), or ``$CACHEWISE_PROGRESS`` says so."""
    forced = _forced()
    if forced is not None:
        return forced
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


@contextmanager
def progress(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(count)``; a rich bar on stderr on a terminal, a no-op otherwise.

    ``total`` ``None`` draws a pulsing bar (the amount of work is not known up front).
    """
    if not show_progress():
        yield lambda _count: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    forced = _forced() is True
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True, force_terminal=True if forced else None),
        transient=not forced,  # forced (a log, a test): the last state of the bar stays
    ) as bar:
        task = bar.add_task(description, total=total)

        def advance(count: int) -> None:
            bar.update(task, advance=count)

        yield advance
