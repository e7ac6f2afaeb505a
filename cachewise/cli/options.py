"""The options the commands share, defined once: ``--db``, ``--tag KEY=VALUE``, output files,
ports and URLs, and the ledger a command opens (sqlite-utils style: one decorator per option).

Each check runs when the option is parsed, before any work, and fails with click's
``Error: Invalid value for '--option': ...`` naming the value (exit status 2).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from sqlalchemy.engine import URL

from ..errors import LedgerError
from .errors import CliError

if TYPE_CHECKING:
    import pandas as pd

    from ..pricing import PriceBook

__all__ = [
    "DB_HELP",
    "PORT",
    "HttpUrl",
    "KeyValue",
    "OutputPath",
    "count_option",
    "db_option",
    "ledger_frame",
    "ledger_url",
    "output_option",
    "pairs",
    "price_book",
    "price_table_option",
    "tag_option",
    "when",
    "window",
    "write_output",
]

F = TypeVar("F", bound=Callable[..., Any])

#: The help of every ``--db`` option; ``{default}`` is the command's default ledger.
DB_HELP = "Ledger: a SQLite path or a database URL (postgresql://...); default {default}."
LEDGER_DEFAULT = "$CACHEWISE_DB, else the user's ledger file"


def count_option(*decls: str, default: float, minimum: float, help: str) -> Callable[[F], F]:
    """An option for a count (an ``int`` default) or an amount (a ``float`` one) that may not go
    below ``minimum``; its default is shown in the help."""
    kind = click.IntRange(min=int(minimum)) if isinstance(default, int) else click.FloatRange(min=minimum)
    return click.option(*decls, default=default, show_default=True, type=kind, help=help)


def db_option(default: str = LEDGER_DEFAULT) -> Callable[[F], F]:
    """``--db URL``: the ledger a command reads or records into (checked by :func:`ledger_url`)."""
    return click.option("--db", "db", metavar="URL", default=None, help=DB_HELP.format(default=default))


class KeyValue(click.ParamType[tuple[str, str]]):
    """``KEY=VALUE`` as a pair; the key must not be empty, nor the value unless ``allow_empty``."""

    name = "key=value"

    def __init__(self, value_name: str = "VALUE", *, allow_empty: bool = True) -> None:
        self.value_name = value_name
        self.allow_empty = allow_empty

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        key, sep, rest = str(value).partition("=")
        if not sep or not key or not (rest or self.allow_empty):
            self.fail(f"{value!r} is not KEY={self.value_name}", param, ctx)
        return key, rest


def pairs(ctx: click.Context, param: click.Parameter, value: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """Callback: repeated ``KEY=VALUE`` options as a dict (a later key wins)."""
    return dict(value)


def tag_option(help: str) -> Callable[[F], F]:
    """``--tag KEY=VALUE`` (repeatable), given to the command as a dict ``tags``."""
    return click.option(
        "--tag", "tags", multiple=True, type=KeyValue(), metavar="KEY=VALUE", callback=pairs, help=help
    )


def price_table_option() -> Callable[[F], F]:
    """``--price-table FILE`` (repeatable): overlays on the shipped table, the same in every command."""
    return click.option(
        "--price-table",
        "overlays",
        multiple=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="A price overlay file laid over the shipped table (repeatable, in order).",
    )


def output_option(help: str, *aliases: str, dest: str = "output", required: bool = False) -> Callable[[F], F]:
    """``--output FILE`` / ``-o FILE``: the file a command writes, the same spelling in every command
    (``aliases``: older spellings a command keeps, e.g. ``--out``)."""
    return click.option("--output", "-o", *aliases, dest, type=OutputPath(), required=required, help=help)


def price_book(overlays: Sequence[Path]) -> PriceBook:
    """The shipped table (with ``$CACHEWISE_PRICE_TABLE``) or the ``--price-table`` overlays on it."""
    from ..pricing import PriceBook

    return PriceBook.load(*overlays) if overlays else PriceBook.default()


#: A TCP port to listen on (0: any free port).
PORT = click.IntRange(0, 65535)

_SQLITE_MAGIC = b"SQLite format 3\x00"


class OutputPath(click.ParamType[Path]):
    """A file to write: its folder must exist and it must not be a directory (``-`` is stdout)."""

    name = "file"

    def __init__(self, allow_dash: bool = False) -> None:
        self.allow_dash = allow_dash

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path:
        if isinstance(value, Path):
            path = value
        else:
            text = str(value)
            if self.allow_dash and text == "-":
                return Path("-")
            path = Path(text)
        problem = output_problem(path)
        if problem:
            self.fail(f"{str(path)!r}: {problem}", param, ctx)
        return path


def output_problem(path: Path) -> str | None:
    """Why ``path`` cannot be written as a file, or ``None``."""
    target = path.expanduser()
    if target.is_dir():
        return "is a directory"
    folder = target.parent
    if not folder.exists():
        return f"folder {str(folder)!r} does not exist"
    if not folder.is_dir():
        return f"{str(folder)!r} is not a folder"
    return None


def write_output(path: Path, text: str, option: str) -> None:
    """Write ``text`` to ``path``; a failure is an ``Error:`` naming ``option`` and the path."""
    try:
        path.expanduser().write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"{option} {str(path)!r}: cannot write: {exc.strerror or exc}") from exc


class HttpUrl(click.ParamType[str]):
    """An ``http://`` or ``https://`` URL with a host, passed on as written."""

    name = "url"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        import httpx

        text = str(value).strip()
        try:
            url = httpx.URL(text)
        except httpx.InvalidURL as exc:
            self.fail(f"{text!r} is not a URL: {exc}", param, ctx)
        if url.scheme not in ("http", "https") or not url.host:
            self.fail(f"{text!r} is not an http:// or https:// URL with a host", param, ctx)
        return text


def ledger_url(db: str | None, *, must_exist: bool, option: str = "--db") -> URL:
    """The ledger a command opens, checked before it is opened.

    ``must_exist`` (read-only commands: ``report``, ``budget check``, ``ledger info``, ...):
    a SQLite file that is not there is an error, never a new empty ledger; a mistyped path
    must not read as "nothing spent". For every command: a database URL that cannot be
    parsed, a SQLite path that is a folder, or a file that is not a SQLite database, is an
    error naming ``option`` and the value. A path given explicitly must be in an existing
    folder (the default ledger's folder is created).
    """
    from ..ledger.store import resolve_url

    shown = f"{option} {db!r}" if db is not None else "the ledger (from $CACHEWISE_DB or the default)"
    try:
        url = resolve_url(db)
    except LedgerError as exc:
        raise CliError(f"{shown}: {exc}") from exc
    except ValueError as exc:  # SQLAlchemy's URL parser, e.g. a port that is not a number
        raise CliError(f"{shown}: not a database URL or path: {exc}") from exc
    if url.get_backend_name() != "sqlite":
        if must_exist:
            _require_server_ledger(url, shown, option)
        return url
    path = Path(str(url.database))
    if not path.exists():
        if must_exist:
            raise CliError(f"no ledger at {path}; run `cachewise demo` or pass {option}" + _demo_hint(db))
        if db is not None and not path.parent.is_dir():
            raise CliError(f"{shown}: folder {str(path.parent)!r} does not exist")
        return url
    if path.is_dir():
        raise CliError(f"{shown}: {path} is a folder, not a SQLite ledger file")
    try:
        with path.open("rb") as handle:
            head = handle.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise CliError(f"{shown}: cannot open {path}: {exc.strerror or exc}") from exc
    if head and head != _SQLITE_MAGIC:
        raise CliError(f"{shown}: {path} is not a SQLite database")
    return url


def _demo_hint(db: str | None) -> str:
    """When the default ledger is missing and ``cachewise demo`` recorded its own: the command to see it."""
    import os

    from ..ledger.store import ENV_DB

    if db is not None or os.environ.get(ENV_DB):
        return ""
    from ..demo.runner import default_demo_db

    demo = default_demo_db()
    if not demo.is_file():
        return ""
    ctx = click.get_current_context(silent=True)
    words = ctx.command_path.split()[1:] if ctx is not None else ["report"]
    command = " ".join(["cachewise", *words])
    return f"; the demo recorded into {demo}: {command} --db {demo}"


def _require_server_ledger(url: URL, shown: str, option: str) -> None:
    """A database server's ledger must have its tables already: reading never creates them."""
    from ..ledger import Ledger

    try:
        probe = Ledger(url, upgrade=False)
        try:
            version = probe.schema_version()
        finally:
            probe.close()
    except LedgerError as exc:
        raise CliError(f"{shown}: {exc}") from exc
    if version == 0:
        where = url.render_as_string(hide_password=True)
        raise CliError(f"no ledger at {where}; run `cachewise demo` or pass {option}")


def when(value: str | None, option: str, now: datetime) -> datetime | None:
    """A ``--since``/``--until``/``--at`` value (``7d``, ``today``, an ISO date...) at ``now``."""
    from ..reports.window import parse_when

    if value is None:
        return None
    try:
        return parse_when(value, now)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=f"'{option}'") from exc


def window(
    since: str | None,
    until: str | None,
    now: datetime,
    *,
    since_option: str = "--since",
    until_option: str = "--until",
) -> tuple[datetime | None, datetime | None]:
    """``--since`` and ``--until`` parsed at ``now``; an ``--until`` before ``--since`` is an error."""
    start, end = when(since, since_option, now), when(until, until_option, now)
    if start is not None and end is not None and start > end:
        raise click.BadParameter(
            f"{since!r} ({start.isoformat()}) is after {until_option} {until!r} ({end.isoformat()})",
            param_hint=f"'{since_option}'",
        )
    return start, end


def ledger_frame(
    db: str | None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    model: str | Sequence[str] | None = None,
    tags: Mapping[str, str] | None = None,
    quarantine: bool = False,
    book: PriceBook | None = None,
) -> pd.DataFrame:
    """The calls of an existing ledger as a frame (``quarantine``: the records it quarantined in
    the window instead, calls that are in no total); any failure is an ``Error:`` naming ``--db``.

    ``book`` (from ``--price-table``): every call priced under it, as ``cachewise ledger reprice``
    does (at its own time, with its own modifiers), instead of as recorded; the ledger is unchanged.
    """
    from ..reports.source import load_frame, load_quarantine

    reader = load_quarantine if quarantine else load_frame
    frame = _read_ledger(reader, db, since=since, until=until, model=model, tags=tags)
    if book is None or quarantine or not len(frame):
        return frame
    return _repriced(frame, db, book, since=since, until=until, model=model, tags=tags)


def _repriced(
    frame: pd.DataFrame,
    db: str | None,
    book: PriceBook,
    *,
    since: datetime | None,
    until: datetime | None,
    model: str | Sequence[str] | None,
    tags: Mapping[str, str] | None,
) -> pd.DataFrame:
    """``frame`` with its costs as ``book`` prices each call (``Ledger.reprice``, nothing stored)."""
    from ..ledger import Ledger
    from ..reports.columns import COST_COLUMNS

    url = ledger_url(db, must_exist=True)
    try:
        with Ledger(url) as ledger:
            priced = ledger.reprice(
                book, since=since, until=until, model=model, tags=dict(tags) if tags else None
            )
    except LedgerError as exc:
        raise CliError(f"--db {db!r}: {exc}" if db is not None else str(exc)) from exc
    by_id = priced.set_index("request_id")
    ids = frame["request_id"]
    out = frame.copy()
    for name in COST_COLUMNS:
        out[name] = ids.map(by_id[f"repriced_{name}"]).astype(object)
        out[name] = out[name].where(out[name].notna(), None)
    out["cost_error"] = ids.map(by_id["repriced_cost_error"]).astype(object)
    out["cost_error"] = out["cost_error"].where(out["cost_error"].notna(), None)
    if "price_table_version" in out.columns:
        out["price_table_version"] = book.version
    return out


def _read_ledger(
    reader: Callable[..., pd.DataFrame], db: str | None, *, tags: Mapping[str, str] | None, **window: Any
) -> pd.DataFrame:
    url = ledger_url(db, must_exist=True)
    try:
        return reader(url, tags=tags or None, **window)
    except LedgerError as exc:
        raise CliError(f"--db {db!r}: {exc}" if db is not None else str(exc)) from exc
