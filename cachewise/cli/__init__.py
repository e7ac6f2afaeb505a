"""The ``cachewise`` command line: one module per command group, registered here."""

from __future__ import annotations

import importlib
from typing import Any

import click

from ..errors import PriceTableError

__all__ = ["cli", "main"]

# (module under cachewise.cli, attribute): each attribute is a click command or group.
COMMANDS: list[tuple[str, str]] = [
    ("prices", "prices"),
    ("plan", "plan"),
    ("plan", "lint"),
    ("emulate", "emulate"),
    ("ledger", "ledger"),
    ("report", "report"),
    ("budget", "budget"),
    ("demo", "demo"),
    ("proxy", "proxy"),
    ("export", "export"),
]


class _BadPriceTable(click.ClickException):
    exit_code = 2


class _Cli(click.Group):
    """The root group: a broken price table is bad input (exit 2), whichever command loaded it."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PriceTableError as exc:
            raise _BadPriceTable(str(exc)) from exc
        except click.ClickException as exc:
            if isinstance(exc.__cause__, PriceTableError) and not isinstance(exc, _BadPriceTable):
                raise _BadPriceTable(exc.message) from exc.__cause__
            raise


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cachewise")
def cli() -> None:
    """cachewise: plan Claude prompt-cache breakpoints, record every call, and report what caching saved."""


for _module, _attr in COMMANDS:
    cli.add_command(getattr(importlib.import_module(f"{__name__}.{_module}"), _attr))


def main() -> None:
    cli()
