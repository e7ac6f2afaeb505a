"""Token counts of request prefixes: ``count_tokens`` through the caller's own client, memoised forever.

There is no "count up to block k" endpoint, so a prefix is counted by sending a
truncated copy of the request (:meth:`cachewise.prompt.Prompt.truncated`) to
``POST /v1/messages/count_tokens`` (docs/api-notes.md §4.1). Where the copy needs a
placeholder user turn to be valid, the count of that turn alone (the *baseline*,
counted once per model) is subtracted, which errs low: safe for the minimum check.

A count is memoised by (namespace, model, prefix hash) in a SQLite file in the user
cache dir (``platformdirs``; override with ``CACHEWISE_TOKEN_MEMO``), so a prefix is
counted once ever. Learned minimum cacheable lengths live in the same file.

Offline bounds (no call): for a prefix of ``B`` canonical bytes of which ``T`` are
non-whitespace text outside binary payloads,

* ``tokens <= B + slack`` (a token is at least one byte; ``slack`` covers the per-request
  framing and, when tools are present, the tool-use system prompt of up to ~800 tokens,
  docs/api-notes.md §6.1);
* ``tokens >= T / 8`` (a heuristic: real tokenizers average 3–5 bytes per token on text
  and code; 8 leaves room for dense content).

Counts memoised for a shorter or longer prefix of the same request tighten both bounds.
The planner counts only when a bound straddles the model's minimum.

Counting never stalls the user's request: no retries, no ``retry-after`` waits, and each
count is bounded by the planner's per-request deadline (docs/planner.md, "Counting has its
own time budget").
"""

from __future__ import annotations

import bisect
import inspect
import json
import os
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Generator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import anyio
import httpx
import httpx2
import platformdirs

from .errors import TokenCountError
from .prompt import Prompt

__all__ = [
    "ANTHROPIC_VERSION",
    "COUNT_TOKENS_PATH",
    "AsyncCountFunction",
    "AsyncTokenCounter",
    "CountClient",
    "CountFunction",
    "LearnedMinimum",
    "TokenBounds",
    "TokenCounter",
    "TokenMemo",
    "prefix_bounds",
    "read_reply",
]

CountFunction = Callable[[dict[str, Any]], int]
AsyncCountFunction = Callable[[dict[str, Any]], Awaitable[int]]

ANTHROPIC_VERSION = "2026-10-21"  # what SDK 2.12.0 sends (docs/api-notes.md §7, Appendix A #2)
DEFAULT_BASE_URL = "https://api.anthropic.com"
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
ENV_MEMO = "CACHEWISE_TOKEN_MEMO"
LOW_BYTES_PER_TOKEN = 8
FRAMING_SLACK = 64
TOOLS_SLACK = 1024
NEIGHBOUR_SLACK = 16
_APART = ":apart"  # the memo namespace suffix of counts kept out of the planner's knowledge
_BASELINE_KEY = "baseline:filler-v1"
_MINIMUMS_MAX = 1024  # learned minimums kept in memory, by (namespace, model)


# -- memo --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LearnedMinimum:
    """What responses taught about a model's minimum: it is ``> above`` and ``<= at_most``."""

    above: int = 0
    at_most: int | None = None


class TokenMemo:
    """Persistent prefix counts and learned minimums (SQLite; ``path=None`` keeps it in memory).

    Both are read from the file once per (namespace, model) and then served from memory: the
    counts as a table, the learned minimum as its last value (the planner asks for it on every
    plan). Every write goes through :meth:`put` / :meth:`learn_minimum`, which update memory and
    file together, so what memory serves is what the file holds for this process. Another
    process writing the same file is seen on the next start (as for counts).
    """

    def __init__(self, path: str | Path | None) -> None:
        self.path = None if path is None else Path(path)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            ":memory:" if self.path is None else str(self.path), check_same_thread=False
        )
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], dict[str, int]] = {}
        self._minimums: dict[tuple[str, str], LearnedMinimum] = {}
        with self._lock, self._db:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS prefix_tokens (namespace TEXT NOT NULL, model TEXT NOT NULL,"
                " prefix_hash TEXT NOT NULL, tokens INTEGER NOT NULL, counted_at TEXT NOT NULL,"
                " PRIMARY KEY (namespace, model, prefix_hash))"
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS learned_minimums (namespace TEXT NOT NULL, model TEXT NOT NULL,"
                " above INTEGER NOT NULL, at_most INTEGER, updated_at TEXT NOT NULL,"
                " PRIMARY KEY (namespace, model))"
            )

    @classmethod
    def default(cls) -> TokenMemo:
        """The memo in the user cache dir, or at ``$CACHEWISE_TOKEN_MEMO``."""
        env = os.environ.get(ENV_MEMO)
        path = Path(env) if env else platformdirs.user_cache_path("cachewise") / "tokens.sqlite3"
        return cls(path)

    def _table(self, namespace: str, model: str) -> dict[str, int]:
        key = (namespace, model)
        table = self._cache.get(key)
        if table is None:
            with self._lock:
                rows = self._db.execute(
                    "SELECT prefix_hash, tokens FROM prefix_tokens WHERE namespace = ? AND model = ?",
                    (namespace, model),
                ).fetchall()
            table = {str(h): int(t) for h, t in rows}
            self._cache[key] = table
        return table

    def get(self, namespace: str, model: str, prefix_hash: str) -> int | None:
        return self._table(namespace, model).get(prefix_hash)

    def lookup(self, namespace: str, model: str) -> Mapping[str, int]:
        """Every memoised count for the model (read-only view)."""
        return self._table(namespace, model)

    def put(self, namespace: str, model: str, prefix_hash: str, tokens: int) -> None:
        self._table(namespace, model)[prefix_hash] = tokens
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO prefix_tokens VALUES (?, ?, ?, ?, ?)",
                (namespace, model, prefix_hash, tokens, datetime.now(UTC).isoformat()),
            )

    def minimum(self, namespace: str, model: str) -> LearnedMinimum:
        """What is learned of ``model``'s minimum (read from the file once, then from memory)."""
        key = (namespace, model)
        known = self._minimums.get(key)
        if known is not None:
            return known
        with self._lock:
            known = self._minimums.get(key)
            if known is None:
                row = self._db.execute(
                    "SELECT above, at_most FROM learned_minimums WHERE namespace = ? AND model = ?",
                    (namespace, model),
                ).fetchone()
                known = LearnedMinimum() if row is None else LearnedMinimum(int(row[0]), row[1])
                if len(self._minimums) >= _MINIMUMS_MAX:
                    self._minimums.clear()
                self._minimums[key] = known
        return known

    def learn_minimum(
        self, namespace: str, model: str, *, above: int | None = None, at_most: int | None = None
    ) -> LearnedMinimum:
        """Record that the minimum is ``> above`` and/or ``<= at_most``; return what is now known.

        Contradicting evidence (a write at or below a learned lower bound) means the minimum
        moved down: the newer fact wins and the older bound is dropped.
        """
        old = self.minimum(namespace, model)
        low, high = old.above, old.at_most
        if at_most is not None:
            high = at_most if high is None else min(high, at_most)
            if low >= at_most:
                low = 0
        if above is not None:
            low = max(low, above)
            if high is not None and high <= above:
                high = None
        new = LearnedMinimum(low, high)
        if new == old:
            return old  # nothing learned: no write (this runs after every planned response)
        with self._lock:
            with self._db:
                self._db.execute(
                    "INSERT OR REPLACE INTO learned_minimums VALUES (?, ?, ?, ?, ?)",
                    (namespace, model, new.above, new.at_most, datetime.now(UTC).isoformat()),
                )
            self._minimums[(namespace, model)] = new  # once committed: memory follows the file
        return new

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __del__(self) -> None:  # pragma: no cover - interpreter-dependent timing
        try:
            self._db.close()
        except Exception:
            pass


# -- bounds ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenBounds:
    """What is known about a prefix's size: ``low <= tokens <= high``; ``exact`` when counted."""

    low: int
    high: int
    estimate: int
    exact: bool = False


def prefix_bounds(prompt: Prompt, index: int, known: Mapping[int, int], order: list[int]) -> TokenBounds:
    """Bounds for the prefix ending at ``index`` from bytes and from counted neighbours.

    ``known`` maps position index → counted tokens for this prompt; ``order`` is its sorted keys.
    """
    exact = known.get(index)
    if exact is not None:
        return TokenBounds(exact, exact, exact, True)
    slack = FRAMING_SLACK + (TOOLS_SLACK if prompt.body.get("tools") else 0)
    text = prompt.cum_text(index)
    size = prompt.cum_bytes(index)
    low = text // LOW_BYTES_PER_TOKEN
    high = size + slack
    estimate = text // 4
    at = bisect.bisect_left(order, index)
    if at > 0:
        j = order[at - 1]
        base = known[j]
        low = max(low, base + (text - prompt.cum_text(j)) // LOW_BYTES_PER_TOKEN)
        high = min(high, base + size - prompt.cum_bytes(j) + NEIGHBOUR_SLACK)
        estimate = base + (text - prompt.cum_text(j)) // 4
    if at < len(order):
        k = order[at]
        top = known[k]
        high = min(high, top + NEIGHBOUR_SLACK)
        low = max(low, top - (prompt.cum_bytes(k) - size) - NEIGHBOUR_SLACK)
    low = max(0, min(low, high))
    return TokenBounds(low, high, max(low, min(high, estimate)), False)


# -- counters ----------------------------------------------------------------------------------
#
# One core, two thin drivers (the shape of the planner's ``_steps``): ``_CounterBase._steps``
# yields each body it needs counted and does no I/O; ``TokenCounter.count`` and
# ``AsyncTokenCounter.count`` send them. One count_tokens client (:class:`CountClient`) per
# source, one error handling (:meth:`_CounterBase._failures`) for every source.


def _status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if status is None:
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _read_count(payload: Any) -> int:
    value = (
        payload.get("input_tokens")
        if isinstance(payload, Mapping)
        else getattr(payload, "input_tokens", None)
    )
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TokenCountError(f"count_tokens returned no whole input_tokens (got {value!r})")
    return value


MAX_QUIET = 60.0  # seconds: the longest retry-after the counter honours by not counting


def _retry_after(response: Any) -> float | None:
    """Seconds a reply asks to wait (``retry-after-ms`` or ``retry-after`` in seconds), if it says."""
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        try:
            seconds = float(raw) * scale if raw is not None else None
        except (TypeError, ValueError):
            seconds = None
        if seconds is not None and seconds > 0:
            return min(seconds, MAX_QUIET)
    return None


class _Refused(TokenCountError):
    """count_tokens answered with an error status (and perhaps how long to wait)."""

    def __init__(self, reason: str, status: int, retry_after: float | None) -> None:
        super().__init__(reason, status)
        self.retry_after = retry_after


def read_reply(response: Any) -> int:
    """The count in an HTTP reply of ``count_tokens`` (httpx / httpx2), or :class:`TokenCountError`.

    An error status raises with the API's own error message and the status.
    """
    status, text = int(response.status_code), str(response.text)
    if status >= 400:
        try:
            message = json.loads(text)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = text[:200]
        raise _Refused(str(message), status, _retry_after(response))
    try:
        payload = response.json()
    except ValueError as exc:
        raise TokenCountError(f"count_tokens replied with no JSON ({text[:200]!r})", status) from exc
    return _read_count(payload)


def _headers(api_key: str | None) -> dict[str, str]:
    headers = {"anthropic-version": ANTHROPIC_VERSION, "content-type": "application/json"}
    if api_key:
        headers["x-api-key"] = api_key
    return headers


def _is_sdk_client(source: Any) -> bool:
    """An ``anthropic`` client (first-party, Bedrock, Vertex): ``with_options``, ``messages.count_tokens``."""
    messages = getattr(source, "messages", None)
    with_options = getattr(source, "with_options", None)
    return callable(with_options) and callable(getattr(messages, "count_tokens", None))


def _timeout_kwargs(timeout: float | None) -> dict[str, Any]:
    return {} if timeout is None else {"timeout": timeout}


@dataclass(frozen=True, slots=True)
class CountClient:
    """How one source reaches ``count_tokens``: ``send`` a body (with a timeout), ``parse`` the reply.

    ``send`` returns the reply, or an awaitable of it for an async source. Built by
    :meth:`for_source` for every kind of source, sync or async alike.
    """

    send: Callable[[dict[str, Any], float | None], Any]
    parse: Callable[[Any], int]
    namespace: str

    @classmethod
    def for_source(
        cls, source: Any, *, asynchronous: bool, base_url: str | None = None, api_key: str | None = None
    ) -> CountClient:
        """The client for an ``anthropic`` client, an httpx / httpx2 client, or a count callable.

        An ``anthropic`` client counts through ``with_options(max_retries=0)``: no retries and
        no ``retry-after`` waits (a count is an optimisation; the user's request is waiting).
        """
        kind = "async" if asynchronous else "sync"
        http_types = (
            (httpx.AsyncClient, httpx2.AsyncClient) if asynchronous else (httpx.Client, httpx2.Client)
        )
        if isinstance(source, http_types):
            url = (base_url or os.environ.get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
            target, headers, http = f"{url}{COUNT_TOKENS_PATH}", _headers(api_key), source

            def post(body: dict[str, Any], timeout: float | None) -> Any:
                return http.post(target, json=body, headers=headers, **_timeout_kwargs(timeout))

            return cls(post, read_reply, url)
        if _is_sdk_client(source):
            client: Any = source
            if inspect.iscoroutinefunction(client.messages.count_tokens) != asynchronous:
                twin = "AsyncTokenCounter" if not asynchronous else "TokenCounter"
                raise TypeError(f"this counter needs a {kind} client; use {twin} for this one")
            quiet = client.with_options(max_retries=0)

            def via_sdk(body: dict[str, Any], timeout: float | None) -> Any:
                return quiet.messages.count_tokens(**body, **_timeout_kwargs(timeout))

            return cls(via_sdk, _read_count, str(getattr(client, "base_url", type(client).__name__)))
        if callable(source):
            if not asynchronous and inspect.iscoroutinefunction(source):
                raise TypeError(
                    "TokenCounter needs a sync count function; use AsyncTokenCounter for async ones"
                )
            function = source
            return cls(lambda body, timeout: function(body), int, "callable")
        raise TypeError(
            f"cannot count tokens with {type(source).__name__}; pass a {kind} callable, an anthropic client "
            f"or an httpx {'AsyncClient' if asynchronous else 'Client'} with base_url"
        )


class _CounterBase:
    asynchronous: ClassVar[bool] = False

    def __init__(
        self,
        source: CountFunction | AsyncCountFunction | Any,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        memo: TokenMemo | str | Path | None = None,
        namespace: str | None = None,
    ) -> None:
        self.client = CountClient.for_source(
            source, asynchronous=self.asynchronous, base_url=base_url, api_key=api_key
        )
        if isinstance(memo, TokenMemo):
            self.memo = memo
        elif memo is None:
            self.memo = TokenMemo.default()
        else:
            self.memo = TokenMemo(memo)
        self.namespace = namespace or self.client.namespace
        self.calls = 0
        self.failures = 0
        self._quiet_until = 0.0  # time.monotonic(): no count before, as a retry-after asked

    def known(self, prompt: Prompt) -> dict[int, int]:
        """Memoised counts of this prompt's prefixes, by position index."""
        table = self.memo.lookup(self.namespace, prompt.model)
        if not table:
            return {}
        found: dict[int, int] = {}
        get = table.get
        for index, prefix_hash in enumerate(prompt.hashes):
            value = get(prefix_hash)
            if value is not None:
                found[index] = value
        return found

    def cached(self, prompt: Prompt, index: int) -> int | None:
        return self.memo.get(self.namespace, prompt.model, prompt.prefix_hash(index))

    def learned_minimum(self, model: str) -> LearnedMinimum:
        return self.memo.minimum(self.namespace, model)

    def learn_minimum(
        self, model: str, *, above: int | None = None, at_most: int | None = None
    ) -> LearnedMinimum:
        return self.memo.learn_minimum(self.namespace, model, above=above, at_most=at_most)

    def _steps(self, prompt: Prompt, index: int, apart: bool = False) -> Generator[dict[str, Any], int, int]:
        """The counting core: yields each body to count (the prefix, then its baseline if needed).

        ``apart``: memoise the count in a namespace of its own (``namespace`` + ``":apart"``) that
        :meth:`known` does not read: a count made for the ledger, not for planning. A count that
        is not apart takes it from there before asking (the same prefix has the same count).
        """
        key = prompt.prefix_hash(index)
        spare = self.namespace + _APART
        hit = self.memo.get(spare, prompt.model, key) if apart else self.cached(prompt, index)
        if hit is None and not apart:
            hit = self.memo.get(spare, prompt.model, key)
            if hit is not None:
                self.memo.put(self.namespace, prompt.model, key, hit)
        if hit is not None:
            return hit
        body, filler = prompt.truncated(index)
        raw = yield body
        baseline = 0
        if filler:
            memoised = self.memo.get(self.namespace, prompt.model, _BASELINE_KEY)
            if memoised is None:
                memoised = yield prompt.baseline_body()
                self.memo.put(self.namespace, prompt.model, _BASELINE_KEY, memoised)
            baseline = memoised
        tokens = max(0, raw - baseline)
        self.memo.put(spare if apart else self.namespace, prompt.model, key, tokens)
        return tokens

    def _remaining(self, deadline: float | None) -> float | None:
        """Seconds left for the next call before ``deadline`` (``time.monotonic()``), or ``None``.

        Raises :class:`TokenCountError` without calling once the deadline has passed, and while
        a ``retry-after`` from an earlier reply runs: the counter does not wait, it skips.
        """
        now = time.monotonic()
        if now < self._quiet_until:
            wait = self._quiet_until - now
            raise TokenCountError(f"count_tokens asked to wait (retry-after, {wait:.1f} s left); not counted")
        if deadline is None:
            return None
        left = deadline - now
        if left <= 0:
            raise TokenCountError("the count budget of this request is spent; not counted")
        return left

    def _quiet(self, seconds: float | None) -> None:
        if seconds is not None:
            self._quiet_until = max(self._quiet_until, time.monotonic() + min(seconds, MAX_QUIET))

    @contextmanager
    def _failures(self, timeout: float | None) -> Iterator[None]:
        """One count call: counted, and every failure a :class:`TokenCountError` (also counted).

        A refusal that says ``retry-after`` stops counting for that long (at most 60 s).
        """
        self.calls += 1
        try:
            yield
        except TokenCountError as exc:
            self.failures += 1
            self._quiet(exc.retry_after if isinstance(exc, _Refused) else None)
            raise
        except TimeoutError as exc:
            self.failures += 1
            raise TokenCountError(f"no answer within the count budget ({timeout or 0:.2f} s left)") from exc
        except Exception as exc:  # the user's call never fails because a count did
            self.failures += 1
            self._quiet(_retry_after(getattr(exc, "response", None)))
            raise TokenCountError(f"{type(exc).__name__}: {exc}", _status_of(exc)) from exc


class TokenCounter(_CounterBase):
    """Counts prefixes with ``count_tokens`` via a callable, an ``anthropic`` client or an httpx client.

    * ``TokenCounter(fn)`` — ``fn(body: dict) -> int``;
    * ``TokenCounter(anthropic.Anthropic(...))`` (or a Bedrock / Vertex client) — uses
      ``client.with_options(max_retries=0).messages.count_tokens(**body)``;
    * ``TokenCounter(httpx.Client(), base_url=..., api_key=...)`` (``httpx`` or ``httpx2``).

    Counting never retries and never waits out a ``retry-after``: a count is an
    optimisation, and the user's request is waiting. With a ``deadline`` (the planner's
    count budget), a client is given the time left as its timeout; a plain callable
    cannot be interrupted, but no call starts once the deadline has passed.

    Every failure (HTTP error, network, timeout, a rejected input) raises
    :class:`TokenCountError`; the planner turns it into "no breakpoint it cannot justify".
    """

    def _send(self, body: dict[str, Any], deadline: float | None) -> int:
        timeout = self._remaining(deadline)
        with self._failures(timeout):
            return self.client.parse(self.client.send(body, timeout))

    def count(self, prompt: Prompt, index: int, *, deadline: float | None = None, apart: bool = False) -> int:
        """Tokens of the prefix ending at position ``index`` (memo first, then one call).

        ``deadline`` (a ``time.monotonic()`` value) bounds the time spent: past it, no call
        is made and :class:`TokenCountError` is raised. ``apart``: a count for the ledger, kept
        out of :meth:`known` (see :meth:`_steps`).
        """
        steps = self._steps(prompt, index, apart)
        try:
            body = next(steps)
            while True:
                body = steps.send(self._send(body, deadline))
        except StopIteration as stop:
            tokens: int = stop.value
            return tokens


class AsyncTokenCounter(_CounterBase):
    """The async twin of :class:`TokenCounter`: an async callable, ``anthropic.AsyncAnthropic`` (or an
    async Bedrock / Vertex client), or an ``httpx.AsyncClient`` / ``httpx2.AsyncClient`` with ``base_url``.

    Same rules: no retries, no ``retry-after`` waits; with a ``deadline`` every call, a
    callable's included, is cancelled when the time is up."""

    asynchronous = True

    async def _send(self, body: dict[str, Any], deadline: float | None) -> int:
        timeout = self._remaining(deadline)
        with self._failures(timeout), anyio.fail_after(timeout):
            reply = self.client.send(body, timeout)
            return self.client.parse(await reply if inspect.isawaitable(reply) else reply)

    async def count(
        self, prompt: Prompt, index: int, *, deadline: float | None = None, apart: bool = False
    ) -> int:
        """The async twin of :meth:`TokenCounter.count`."""
        steps = self._steps(prompt, index, apart)
        try:
            body = next(steps)
            while True:
                body = steps.send(await self._send(body, deadline))
        except StopIteration as stop:
            tokens: int = stop.value
            return tokens
