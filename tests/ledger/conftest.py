"""Fixtures for the ledger tests: every backend test runs on SQLite and on PostgreSQL.

PostgreSQL is expected at 127.0.0.1:5432 (trust auth, user postgres or root, database
``test``; override with CACHEWISE_TEST_PG_URL). Each test gets its own schema, dropped
afterwards. When PostgreSQL is unreachable the tests *fail*; only outside CI may they
be skipped, by setting CACHEWISE_NO_POSTGRES=1.
"""

from __future__ import annotations

import functools
import os
import selectors
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from cachewise.ledger import CallRecord, Ledger
from cachewise.ledger.record import CostBreakdown
from cachewise.pricing import PriceBook
from cachewise.usage import Usage

PG_CANDIDATES = (
    os.environ.get("CACHEWISE_TEST_PG_URL", ""),
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test",
)
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

TABLE = """
version: "test-1"
server_tools:
  - from: 2024-01-01
    web_search_per_1k: "10"
    code_execution_per_hour: "0.05"
models:
  - id: claude-test-1
    name: Test One
    family: sonnet
    prices:
      - from: 2024-01-01
        input: "3"
        cache_write_5m: "3.75"
        cache_write_1h: "6"
        cache_read: "0.30"
        output: "15"
    batch:
      - from: 2024-01-01
        multiplier: "0.5"
    min_cache_tokens:
      - from: 2024-01-01
        tokens: 1024
    source: tests
    checked: 2026-01-01
"""

OVERLAY = """
version: "negotiated-2"
overlay: true
models:
  - id: claude-test-1
    prices:
      - from: 2024-01-01
        input: "1.5"
        cache_write_5m: "1.875"
        cache_write_1h: "3"
        cache_read: "0.15"
        output: "7.5"
"""


def _ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


_pg_url: str | None = None
_pg_error: str | None = None


def pg_admin_url() -> str:
    """A reachable PostgreSQL URL (psycopg form), or fail/skip with a clear message."""
    global _pg_url, _pg_error
    if os.environ.get("CACHEWISE_NO_POSTGRES") == "1" and not _ci():
        pytest.skip("CACHEWISE_NO_POSTGRES=1 (local only; CI always runs the PostgreSQL tests)")
    if _pg_url is None and _pg_error is None:
        errors = []
        for candidate in PG_CANDIDATES:
            if not candidate:
                continue
            try:
                with psycopg.connect(candidate, connect_timeout=3) as conn:
                    conn.execute("select 1")
                _pg_url = candidate
                break
            except psycopg.Error as exc:
                errors.append(f"{candidate}: {str(exc).strip().splitlines()[0]}")
        else:
            _pg_error = "; ".join(errors)
    if _pg_url is None:
        pytest.fail(
            "PostgreSQL is required by the ledger tests and is unreachable "
            f"({_pg_error}). Start it on 127.0.0.1:5432 with database 'test', "
            "or set CACHEWISE_NO_POSTGRES=1 to skip these tests locally (never in CI).",
            pytrace=False,
        )
    return _pg_url


@contextmanager
def pg_schema(prefix: str) -> Iterator[tuple[str, str]]:
    """A schema of this test's own on the test PostgreSQL: ``(url, schema)``, the URL's search path
    set to it; dropped afterwards."""
    admin = pg_admin_url()
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{admin}?options=-csearch_path%3D{schema}", schema
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@dataclass
class Backend:
    name: str
    url: str
    spool_dir: Path
    tmp: Path
    pg_schema: str | None = None

    def url_via(self, host: str, port: int) -> str:
        """The same database reached through another host:port (for the outage proxy)."""
        assert self.pg_schema is not None
        base = pg_admin_url().replace("127.0.0.1:5432", f"{host}:{port}")
        return f"{base}?options=-csearch_path%3D{self.pg_schema}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    spool = tmp_path / "spool"
    if request.param == "sqlite":
        yield Backend("sqlite", str(tmp_path / "ledger.db"), spool, tmp_path)
        return
    with pg_schema("cw_test") as (url, schema):
        yield Backend("postgres", url, spool, tmp_path, schema)


@pytest.fixture
def open_ledger(backend: Backend) -> Iterator[Callable[..., Ledger]]:
    """Open ledgers on the backend (spool in tmp); all are closed after the test."""
    opened: list[Ledger] = []

    def factory(url: str | None = None, **kwargs: Any) -> Ledger:
        kwargs.setdefault("spool_dir", backend.spool_dir)
        kwargs.setdefault("flush_interval", 0.05)
        led = Ledger(url or backend.url, **kwargs)
        opened.append(led)
        return led

    yield factory
    for led in opened:
        led.close()


@pytest.fixture
def ledger(open_ledger: Callable[..., Ledger]) -> Ledger:
    return open_ledger()


@pytest.fixture(scope="session")
def book(tmp_path_factory: pytest.TempPathFactory) -> PriceBook:
    path = tmp_path_factory.mktemp("prices") / "table.yaml"
    path.write_text(TABLE)
    return PriceBook.load(base=path)


@pytest.fixture(scope="session")
def table_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tables")
    (folder / "table.yaml").write_text(TABLE)
    (folder / "overlay.yaml").write_text(OVERLAY)
    return folder / "table.yaml", folder / "overlay.yaml"


def costs(seed: int) -> CostBreakdown:
    """Deterministic, many-digit costs (exercise exact storage and sums)."""
    return _costs(seed % 997, seed % 13)


@functools.cache
def _costs(a: int, b: int) -> CostBreakdown:
    unit = Decimal("0.000001234567890123456789")
    parts = [Decimal(a + k) * unit for k in range(7)]
    total = sum(parts, Decimal(0))
    no_cache = total + Decimal(b) * Decimal("0.001")
    return CostBreakdown(*parts, cost_total=total, cost_no_cache=no_cache, savings=no_cache - total)


def make_record(i: int, *, priced: bool = True, **kwargs: Any) -> CallRecord:
    usage = kwargs.pop(
        "usage",
        Usage(
            input_tokens=100 + i,
            cache_read_input_tokens=2000 * (i % 3),
            ephemeral_5m_input_tokens=50 * (i % 5),
            ephemeral_1h_input_tokens=10 * (i % 7),
            output_tokens=200 + i % 11,
            web_search_requests=i % 2,
        ),
    )
    kwargs.setdefault("model", "claude-test-1")
    kwargs.setdefault("started_at", T0 + timedelta(seconds=i))
    kwargs.setdefault("request_id", f"req_{i:08d}")
    if priced:
        kwargs.setdefault("cost", costs(i))
        kwargs.setdefault("price_table_version", "test-1")
    return CallRecord(usage=usage, **kwargs)


class TcpProxy:
    """A loopback TCP forwarder that can be taken down and brought back on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def up(self) -> None:
        if self._listener is not None:
            return
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def down(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()

    def _serve(self) -> None:
        assert self._listener is not None
        sel = selectors.DefaultSelector()
        sel.register(self._listener, selectors.EVENT_READ, None)
        peers: dict[socket.socket, socket.socket] = {}
        while not self._stop.is_set():
            for key, _ in sel.select(0.05):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if key.data is None:
                    client, _ = sock.accept()
                    upstream = socket.create_connection(self.target)
                    with self._lock:
                        self._conns += [client, upstream]
                    peers[client], peers[upstream] = upstream, client
                    sel.register(client, selectors.EVENT_READ, "c")
                    sel.register(upstream, selectors.EVENT_READ, "u")
                    continue
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                other = peers.get(sock)
                if not data or other is None:
                    for s in (sock, other):
                        if s is not None and s in peers:
                            sel.unregister(s)
                            peers.pop(s, None)
                            s.close()
                    continue
                try:
                    other.sendall(data)
                except OSError:
                    pass
        for s in list(peers):
            sel.unregister(s)
        sel.unregister(self._listener)
        sel.close()


class Outage:
    """Takes the backend's database away and brings it back at the same URL.

    SQLite: another connection holds an exclusive lock (writers time out). PostgreSQL:
    the ledger connects through a loopback proxy that is shut down (connection refused).
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._sqlite_conn: Any = None
        self.proxy: TcpProxy | None = None
        if backend.name == "postgres":
            self.proxy = TcpProxy(("127.0.0.1", 5432))
            self.proxy.up()
            self.url = backend.url_via("127.0.0.1", self.proxy.port)
        else:
            self.url = backend.url

    def down(self) -> None:
        if self.proxy is not None:
            self.proxy.down()
            return
        import sqlite3

        conn = sqlite3.connect(self.backend.url, isolation_level=None, check_same_thread=False)
        conn.execute("BEGIN EXCLUSIVE")
        self._sqlite_conn = conn

    def up(self) -> None:
        if self.proxy is not None:
            self.proxy.up()
            return
        if self._sqlite_conn is not None:
            self._sqlite_conn.execute("ROLLBACK")
            self._sqlite_conn.close()
            self._sqlite_conn = None

    def close(self) -> None:
        self.up()
        if self.proxy is not None:
            self.proxy.down()


@pytest.fixture
def outage(backend: Backend) -> Iterator[Outage]:
    o = Outage(backend)
    yield o
    o.close()
