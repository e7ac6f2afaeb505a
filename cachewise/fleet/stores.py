"""Where a fleet's reuse events live: a Redis stream, or a PostgreSQL table. Only the stores' own primitives.

Both keep an append-only log of event batches (:mod:`.events`) that every process appends to and
reads from in order, trimmed by age (``retention``, default 2 hours: the reuse window looks back
one hour), and the token counts and learned minimums as durable key-value rows, so a process that
joins later starts with them.

* :class:`RedisStore`: ``XADD`` to a stream trimmed with ``MINID`` (the stream ids are
  millisecond times), ``XREAD BLOCK`` to follow it; counts and minimums in two hashes
  (``HSET``), all under one key prefix.
* :class:`PostgresStore`: a ``BIGSERIAL`` table; appends hold a transaction-level advisory lock
  (``pg_advisory_xact_lock``) so ids commit in order and a reader following ``id > cursor``
  never skips one; ``NOTIFY`` wakes readers (``LISTEN``); counts and minimums upserted with
  ``INSERT ... ON CONFLICT``. The tables are created on first use (under the same lock) in the
  connection's schema, apart from the ledger's migrations: they hold a cache, not records.

Every method may raise the client library's errors; :class:`~cachewise.fleet.hub.Fleet` turns them
into a logged failure and planning goes on locally.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .events import Batch, decode, encode

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "DEFAULT_RETENTION",
    "PostgresStore",
    "RedisStore",
    "ReuseStore",
    "check_url",
    "open_store",
    "redacted",
]

DEFAULT_RETENTION = 7200.0  # seconds of events kept
_FIELD_SEP = "\x1f"


@runtime_checkable
class ReuseStore(Protocol):
    """An ordered log of event batches, and the durable token counts and minimums."""

    def append(self, origin: str, batch: Batch) -> None:
        """Append one batch (``c``/``m`` events also update the durable counts and minimums)."""

    def read(self, cursor: str | None, wait: float) -> tuple[str | None, list[tuple[str, Batch]]]:
        """Batches after ``cursor`` (``None``: from the oldest kept), waiting up to ``wait`` s for one."""

    def latest(self) -> str | None:
        """The cursor of the newest batch, or ``None`` when the log is empty."""

    def passed(self, cursor: str | None, target: str | None) -> bool:
        """Whether a reader at ``cursor`` has read everything up to ``target``."""

    def counts(self) -> Iterator[tuple[str, str, str, int]]:
        """Every durable token count: (namespace, model, prefix hash, tokens)."""

    def minimums(self) -> Iterator[tuple[str, str, int, int | None]]:
        """Every durable learned minimum: (namespace, model, above, at most)."""

    def close(self) -> None: ...


def redacted(url: str) -> str:
    """``url`` without its password (for logs and errors)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[-1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def open_store(store: str | ReuseStore, *, retention: float = DEFAULT_RETENTION) -> ReuseStore:
    """A store from a URL (``redis://``, ``rediss://``, ``unix://``; ``postgresql://``, ``postgres://``)."""
    if not isinstance(store, str):
        if isinstance(store, ReuseStore):
            return store
        raise TypeError(
            f"reuse_store: a redis:// or postgresql:// URL or a ReuseStore, got {type(store).__name__}"
        )
    if _scheme(check_url(store)) in _REDIS:
        return RedisStore(store, retention=retention)
    return PostgresStore(store, retention=retention)


_REDIS = ("redis", "rediss", "unix")
_POSTGRES = ("postgresql", "postgres")


def _scheme(url: str) -> str:
    return urlsplit(url).scheme.split("+", 1)[0]


def check_url(url: str) -> str:
    """``url`` if it names a store :func:`open_store` knows; else a ValueError naming the kinds it knows."""
    scheme = _scheme(url)
    if scheme not in (*_REDIS, *_POSTGRES):
        raise ValueError(
            f"reuse store {redacted(url)!r}: unknown scheme {scheme!r}; use redis://HOST:PORT/DB or "
            "postgresql://USER@HOST/DB"
        )
    return url


def _missing(extra: str, module: str) -> ImportError:
    return ImportError(f"a {extra} reuse store needs {module}: pip install 'cachewise[{extra}]'")


# -- Redis -------------------------------------------------------------------------------------


class RedisStore:
    """The log as a Redis stream ``{prefix}:events``; counts and minimums in hashes beside it.

    ``prefix`` (default ``cachewise:reuse``) may also be given in the URL: ``redis://host/0?prefix=team-a``.
    """

    def __init__(
        self, url: str, *, prefix: str = "cachewise:reuse", retention: float = DEFAULT_RETENTION
    ) -> None:
        try:
            import redis
        except ImportError as exc:  # pragma: no cover - the extra is installed in dev
            raise _missing("redis", "redis") from exc
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        prefix = next((v for k, v in query if k == "prefix"), prefix)
        url = urlunsplit(parts._replace(query=urlencode([(k, v) for k, v in query if k != "prefix"])))
        self.url = redacted(url)
        self.retention = retention
        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3)
        self._events, self._tokens, self._minimums = (
            f"{prefix}:events",
            f"{prefix}:tokens",
            f"{prefix}:minimums",
        )

    def append(self, origin: str, batch: Batch) -> None:
        minid = f"{int((time.time() - self.retention) * 1000)}-0"
        pipe = self._redis.pipeline(transaction=True)
        pipe.xadd(self._events, {"o": origin, "e": encode(batch)}, minid=minid, approximate=True)
        for event in batch:
            if event[0] == "c":
                pipe.hset(self._tokens, _FIELD_SEP.join(event[1:4]), int(event[4]))
            elif event[0] == "m":
                above, at_most = event[3], event[4]
                pipe.hset(
                    self._minimums,
                    _FIELD_SEP.join(event[1:3]),
                    f"{above or 0},{'' if at_most is None else at_most}",
                )
        pipe.execute()

    def read(self, cursor: str | None, wait: float) -> tuple[str | None, list[tuple[str, Batch]]]:
        block = int(wait * 1000) if wait > 0 else None
        reply: Any = self._redis.xread({self._events: cursor or "0-0"}, count=500, block=block)
        out: list[tuple[str, Batch]] = []
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                cursor = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                out.append((fields[b"o"].decode(), decode(fields[b"e"])))
        return cursor, out

    def latest(self) -> str | None:
        newest: Any = self._redis.xrevrange(self._events, count=1)
        if not newest:
            return None
        entry_id = newest[0][0]
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    def passed(self, cursor: str | None, target: str | None) -> bool:
        if target is None:
            return True
        if cursor is None:
            return False
        return _stream_id(cursor) >= _stream_id(target)

    def counts(self) -> Iterator[tuple[str, str, str, int]]:
        rows: Any = self._redis.hgetall(self._tokens)
        for name, value in rows.items():
            namespace, model, prefix_hash = name.decode().split(_FIELD_SEP, 2)
            yield namespace, model, prefix_hash, int(value)

    def minimums(self) -> Iterator[tuple[str, str, int, int | None]]:
        rows: Any = self._redis.hgetall(self._minimums)
        for name, value in rows.items():
            namespace, model = name.decode().split(_FIELD_SEP, 1)
            above, at_most = value.decode().split(",", 1)
            yield namespace, model, int(above), int(at_most) if at_most else None

    def close(self) -> None:
        self._redis.close()


def _stream_id(value: str) -> tuple[int, int]:
    ms, _, seq = value.partition("-")
    return int(ms), int(seq or 0)


# -- PostgreSQL --------------------------------------------------------------------------------

_LOCK_KEY = 0x63776655  # the advisory lock of the fleet tables ("cwfU")
_CHANNEL = "cachewise_reuse"
_DDL = (
    "CREATE TABLE IF NOT EXISTS cachewise_reuse_events (id BIGSERIAL PRIMARY KEY, origin TEXT NOT NULL,"
    " created_at TIMESTAMPTZ NOT NULL DEFAULT now(), batch TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ix_cachewise_reuse_events_created ON cachewise_reuse_events (created_at)",
    "CREATE TABLE IF NOT EXISTS cachewise_reuse_tokens (namespace TEXT NOT NULL, model TEXT NOT NULL,"
    " prefix_hash TEXT NOT NULL, tokens INTEGER NOT NULL, PRIMARY KEY (namespace, model, prefix_hash))",
    "CREATE TABLE IF NOT EXISTS cachewise_reuse_minimums (namespace TEXT NOT NULL, model TEXT NOT NULL,"
    " above INTEGER NOT NULL, at_most INTEGER, PRIMARY KEY (namespace, model))",
)
_TRIM_EVERY = 200


class PostgresStore:
    """The log as the table ``cachewise_reuse_events``; counts and minimums in two more tables."""

    def __init__(self, url: str, *, retention: float = DEFAULT_RETENTION) -> None:
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - the extra is installed in dev
            raise _missing("postgres", "psycopg") from exc
        self._psycopg = psycopg
        self._dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self.url = redacted(url)
        self.retention = retention
        self._writer: psycopg.Connection[Any] | None = None
        self._reader: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()
        self._appends = 0
        with self._write() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            for statement in _DDL:
                conn.execute(statement)

    def _connect(self, *, listen: bool) -> psycopg.Connection[Any]:
        conn = self._psycopg.connect(self._dsn, autocommit=True, connect_timeout=3)
        if listen:
            conn.execute(f"LISTEN {_CHANNEL}")
        return conn

    @contextmanager
    def _write(self) -> Iterator[psycopg.Connection[Any]]:
        with self._lock:
            if self._writer is None or self._writer.closed:
                self._writer = self._connect(listen=False)
            try:
                yield self._writer
            except self._psycopg.OperationalError:
                self._writer.close()
                self._writer = None
                raise

    def append(self, origin: str, batch: Batch) -> None:
        with self._write() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            conn.execute(
                "INSERT INTO cachewise_reuse_events (origin, batch) VALUES (%s, %s)", (origin, encode(batch))
            )
            for event in batch:
                if event[0] == "c":
                    conn.execute(
                        "INSERT INTO cachewise_reuse_tokens VALUES (%s, %s, %s, %s)"
                        " ON CONFLICT (namespace, model, prefix_hash) DO UPDATE SET tokens = EXCLUDED.tokens",
                        (event[1], event[2], event[3], int(event[4])),
                    )
                elif event[0] == "m":
                    conn.execute(
                        "INSERT INTO cachewise_reuse_minimums VALUES (%s, %s, %s, %s)"
                        " ON CONFLICT (namespace, model) DO UPDATE SET above = EXCLUDED.above,"
                        " at_most = EXCLUDED.at_most",
                        (event[1], event[2], int(event[3] or 0), event[4]),
                    )
            self._appends += 1
            if self._appends % _TRIM_EVERY == 0:
                conn.execute(
                    "DELETE FROM cachewise_reuse_events WHERE created_at < now() - make_interval(secs => %s)",
                    (self.retention,),
                )
            conn.execute("SELECT pg_notify(%s, '')", (_CHANNEL,))

    def _select(self, conn: psycopg.Connection[Any], cursor: str | None) -> list[tuple[int, str, str]]:
        rows = conn.execute(
            "SELECT id, origin, batch FROM cachewise_reuse_events WHERE id > %s ORDER BY id LIMIT 500",
            (int(cursor or 0),),
        ).fetchall()
        return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    def read(self, cursor: str | None, wait: float) -> tuple[str | None, list[tuple[str, Batch]]]:
        if self._reader is None or self._reader.closed:
            self._reader = self._connect(listen=True)
        conn = self._reader
        try:
            rows = self._select(conn, cursor)
            if not rows and wait > 0:
                for _note in conn.notifies(timeout=wait, stop_after=1):
                    break
                rows = self._select(conn, cursor)
        except self._psycopg.OperationalError:
            conn.close()
            self._reader = None
            raise
        out = [(origin, decode(text)) for _id, origin, text in rows]
        return (str(rows[-1][0]) if rows else cursor), out

    def latest(self) -> str | None:
        with self._write() as conn:
            row = conn.execute("SELECT max(id) FROM cachewise_reuse_events").fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def passed(self, cursor: str | None, target: str | None) -> bool:
        if target is None:
            return True
        return cursor is not None and int(cursor) >= int(target)

    def counts(self) -> Iterator[tuple[str, str, str, int]]:
        with self._write() as conn:
            rows = conn.execute(
                "SELECT namespace, model, prefix_hash, tokens FROM cachewise_reuse_tokens"
            ).fetchall()
        for namespace, model, prefix_hash, tokens in rows:
            yield str(namespace), str(model), str(prefix_hash), int(tokens)

    def minimums(self) -> Iterator[tuple[str, str, int, int | None]]:
        with self._write() as conn:
            rows = conn.execute(
                "SELECT namespace, model, above, at_most FROM cachewise_reuse_minimums"
            ).fetchall()
        for namespace, model, above, at_most in rows:
            yield str(namespace), str(model), int(above), None if at_most is None else int(at_most)

    def close(self) -> None:
        for conn in (self._writer, self._reader):
            if conn is not None:
                conn.close()
        self._writer = self._reader = None
