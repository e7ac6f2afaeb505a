"""The ``cachewise`` command line: one module per command group, registered here."""

from __future__ import annotations

import importlib

import click

from .errors import CliGroup

__all__ = ["cli", "main"]

# (module under cachewise.cli, attribute): each attribute is a click command or group.
COMMANDS: list[tuple[str, str]] = [
    ("prices", "prices"),
    ("plan", "plan"),
    ("plan", "lint"),
    ("emulate", "emulate"),
    ("ledger", "ledger"),
    ("report", "report"),
    ("calls", "calls"),
    ("budget", "budget"),
    ("demo", "demo"),
    ("proxy", "proxy"),
    ("export", "export"),
    ("reconcile", "reconcile"),
    ("why", "why"),
    ("import_cmd", "import_group"),
    ("whatif", "whatif"),
]


@click.group(cls=CliGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cachewise")
def cli() -> None:
    """cachewise: plan Claude prompt-cache breakpoints, record every call, and report what caching saved."""


for _module, _attr in COMMANDS:
    cli.add_command(getattr(importlib.import_module(f"{__name__}.{_module}"), _attr))


def main() -> None:
    """The ``cachewise`` script and ``python -m cachewise`` (named ``cachewise`` in help and completion)."""
    cli(prog_name="cachewise")
