"""One exit-code policy for every ``cachewise`` command, and one place that enforces it.

* ``0``: the command did what was asked and found nothing to report.
* ``1``: a finding: over budget, a call that cannot be priced in a budget, ``lint --strict``
  warnings. Only :func:`finding` exits 1.
* ``2``: the command could not run as asked: a bad option or argument, an input file that
  cannot be read, a database that cannot be opened, an output file that cannot be written.

Every error is printed as ``Error: ...`` naming the option and the value. :class:`CliGroup`
(the root group) turns any :class:`~cachewise.errors.CachewiseError` that reaches it into
such an error, and gives any click error that would exit 1 the status 2 instead, so no
command can end in a traceback or mix up a finding with a failure.
"""

from __future__ import annotations

from typing import Any, NoReturn

import click

from ..errors import CachewiseError

__all__ = ["EXIT_FINDING", "EXIT_OK", "EXIT_USAGE", "CliError", "CliGroup", "finding"]

EXIT_OK, EXIT_FINDING, EXIT_USAGE = 0, 1, 2


class CliError(click.ClickException):
    """``Error: MESSAGE`` on stderr and exit status 2: the command could not run as asked."""

    exit_code = EXIT_USAGE


def finding() -> NoReturn:
    """Exit with status 1: the command ran and reports a finding (e.g. over budget)."""
    raise SystemExit(EXIT_FINDING)


class CliGroup(click.Group):
    """A group whose commands share the exit-code policy of this module."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CachewiseError as exc:
            raise CliError(str(exc)) from exc
        except click.ClickException as exc:
            if exc.exit_code == EXIT_FINDING:  # click's default for a plain ClickException or FileError
                raise CliError(exc.format_message()) from exc
            raise
