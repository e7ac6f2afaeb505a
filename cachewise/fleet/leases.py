"""Fan-out leases in the fleet's store: one process leads a cold prefix, the others wait for it.

:class:`cachewise.integrations.fanout.FanOut` (``leases=``) claims a prefix here before it leads
it (:class:`~cachewise.integrations.fanout.Leases`). Only the stores' own primitives:

* :class:`RedisLeases`: one key per prefix, ``{prefix}:lease:{key}``. A claim is ``SET key holder
  NX PX hold`` (the lease ends by itself after the bounded hold, so a lead that dies holds nobody
  for longer); a lead that began overwrites it with ``warm:{until}`` for the entry's TTL; a lead
  that failed deletes it only if it still holds it (the compare-and-delete script of the Redis
  ``SET`` documentation).
* :class:`PostgresLeases`: one row per prefix in ``cachewise_fanout_leases``, claimed with
  ``INSERT ... ON CONFLICT DO UPDATE ... WHERE the lease has ended RETURNING`` (one statement: the
  row lock decides between two claims), warm and dropped with ``UPDATE``/``DELETE`` by holder.
  Lease ends are the database's ``now()``; rows ended an hour ago are swept now and then.

"Warm until" is the caller's clock (as the in-process warm set), so replays in virtual time behave
as live. Keys are digests (:func:`~cachewise.integrations.fanout.lease_key`), never prompt text.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .events import from_micros, micros
from .stores import ReuseStore, check_url, redacted

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresLeases", "RedisLeases", "open_leases"]

#: As :data:`cachewise.integrations.fanout.LeaseState` (the fleet does not import the integrations:
#: these classes satisfy its ``Leases`` protocol by shape).
LeaseState = Literal["lead", "held", "warm", "free"]

_WARM = "warm:"
_DROP = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class RedisLeases:
    """Fan-out leases as Redis keys under ``prefix`` (default ``cachewise:reuse``; or ``?prefix=``)."""

    def __init__(self, url: str, *, prefix: str = "cachewise:reuse") -> None:
        import redis

        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        prefix = next((v for k, v in query if k == "prefix"), prefix)
        url = urlunsplit(parts._replace(query=urlencode([(k, v) for k, v in query if k != "prefix"])))
        self.url = redacted(url)
        self._prefix = f"{prefix}:lease:"
        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._drop = self._redis.register_script(_DROP)
        self._watch_error: type[Exception] = redis.WatchError

    def _state(self, value: bytes | None, now: datetime) -> LeaseState:
        if value is None:
            return "free"
        text = value.decode()
        if text.startswith(_WARM):
            return "warm" if from_micros(int(text[len(_WARM) :])) > now else "free"
        return "held"

    def claim(self, key: str, holder: str, hold: float, now: datetime) -> LeaseState:
        name = self._prefix + key
        if self._redis.set(name, holder, nx=True, px=_ms(hold)):
            return "lead"
        value: Any = self._redis.get(name)
        state = self._state(value, now)
        if state != "free":
            return state
        # Ended between the two commands, or warm on an older clock: take it if it is still as read.
        pipe: Any = self._redis.pipeline()
        pipe.watch(name)
        try:
            if pipe.get(name) != value:
                return "held"
            pipe.multi()
            pipe.set(name, holder, px=_ms(hold))
            pipe.execute()
            return "lead"
        except self._watch_error:
            return "held"
        finally:
            pipe.reset()

    def state(self, key: str, now: datetime) -> LeaseState:
        value: Any = self._redis.get(self._prefix + key)
        return self._state(value, now)

    def warm(self, key: str, holder: str, until: datetime, ttl: float) -> None:
        self._redis.set(self._prefix + key, f"{_WARM}{micros(until)}", px=_ms(ttl))

    def drop(self, key: str, holder: str) -> None:
        self._drop(keys=[self._prefix + key], args=[holder])

    def close(self) -> None:
        self._redis.close()


_DDL = (
    "CREATE TABLE IF NOT EXISTS cachewise_fanout_leases (key TEXT PRIMARY KEY, holder TEXT NOT NULL,"
    " ends TIMESTAMPTZ NOT NULL, warm_until BIGINT)"
)
_SWEEP_EVERY = 500


class PostgresLeases:
    """Fan-out leases as rows of ``cachewise_fanout_leases`` (created on first use, as the fleet's)."""

    def __init__(self, url: str) -> None:
        import psycopg

        self._psycopg = psycopg
        self._dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self.url = redacted(url)
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()
        self._claims = 0
        self._closed = False
        self._run(_DDL)

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            if self._closed:
                raise RuntimeError(f"the fan-out leases on {self.url} are closed")
            if self._conn is None or self._conn.closed:
                self._conn = self._psycopg.connect(self._dsn, autocommit=True, connect_timeout=2)
            try:
                cursor = self._conn.execute(sql, params)
                return list(cursor.fetchall()) if cursor.description is not None else []
            except self._psycopg.OperationalError:
                self._conn.close()
                self._conn = None
                raise

    def claim(self, key: str, holder: str, hold: float, now: datetime) -> LeaseState:
        self._claims += 1
        if self._claims % _SWEEP_EVERY == 0:
            self._run("DELETE FROM cachewise_fanout_leases WHERE ends < now() - interval '1 hour'")
        at = micros(now)
        won = self._run(
            "INSERT INTO cachewise_fanout_leases AS l"
            " VALUES (%s, %s, now() + make_interval(secs => %s), NULL) ON CONFLICT (key)"
            " DO UPDATE SET holder = EXCLUDED.holder, ends = EXCLUDED.ends, warm_until = NULL"
            " WHERE l.ends <= now() OR (l.warm_until IS NOT NULL AND l.warm_until <= %s) RETURNING holder",
            (key, holder, hold, at),
        )
        if won:
            return "lead"
        return self.state(key, now)

    def state(self, key: str, now: datetime) -> LeaseState:
        rows = self._run(
            "SELECT warm_until FROM cachewise_fanout_leases WHERE key = %s AND ends > now()", (key,)
        )
        if not rows:
            return "free"
        warm_until = rows[0][0]
        if warm_until is None:
            return "held"
        return "warm" if int(warm_until) > micros(now) else "free"

    def warm(self, key: str, holder: str, until: datetime, ttl: float) -> None:
        self._run(
            "INSERT INTO cachewise_fanout_leases AS l VALUES (%s, %s, now() + make_interval(secs => %s), %s)"
            " ON CONFLICT (key) DO UPDATE SET holder = EXCLUDED.holder, ends = EXCLUDED.ends,"
            " warm_until = EXCLUDED.warm_until",
            (key, holder, ttl, micros(until)),
        )

    def drop(self, key: str, holder: str) -> None:
        self._run(
            "DELETE FROM cachewise_fanout_leases WHERE key = %s AND holder = %s AND warm_until IS NULL",
            (key, holder),
        )

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
            self._conn = None


def open_leases(store: str | ReuseStore) -> RedisLeases | PostgresLeases | None:
    """The fan-out leases on the same store as the fleet's reuse state; ``None`` for a store object
    (a custom :class:`~.stores.ReuseStore` brings no leases). A URL of an unknown kind raises."""
    if not isinstance(store, str):
        return None
    scheme = urlsplit(check_url(store)).scheme.split("+", 1)[0]
    if scheme in ("redis", "rediss", "unix"):
        return RedisLeases(store)
    return PostgresLeases(store)
