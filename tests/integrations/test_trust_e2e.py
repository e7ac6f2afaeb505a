"""End to end, on SQLite and PostgreSQL: hostile upstream replies through the wrapped SDK and the proxy.

Issue 10's "Must show" property, with a real :class:`Ledger` behind the official SDK client
(``cachewise.wrap``) and behind the proxy (over a loopback socket). The upstream is an
``httpx2.MockTransport`` that answers each call with a generated reply and bills every reply it
answers with a 200 (once per request id: a repeated id is the same call answered again). The
replies carry hostile usage objects (missing, nulls, negatives, strings, floats, lists, huge),
odd and repeated request ids, hostile message ids and models, SSE streams (cut short, broken
mid-body, error events, usage in ``message_start`` and ``message_delta``, garbage lines); the
caller adds hostile tags (surrogates, NULs, long); prices come from a valid or broken overlay
(``CACHEWISE_PRICE_TABLE``) or a ``book=``. After one ``flush()``:

* every billed call is a row or a quarantined record with its reason (``rows + quarantined ==
  billed``), and every answered error is an error row;
* no row reads $0 unless its usage counts zero tokens (unpriced rows: ``cost is None`` and a
  ``cost_error``);
* a bad row never delays a good one (all of them are readable after the same ``flush()``);
* the caller gets what the upstream answered: the wrapped client returns (or raises) exactly
  what an unwrapped client does; the proxy passes the status and the bytes through.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import string
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import cachewise
from cachewise.failopen import raising
from cachewise.integrations.proxy import create_proxy_app
from cachewise.integrations.tracker import CallTracker
from cachewise.ledger import CallRecord, Ledger
from cachewise.pricing import PriceBook
from cachewise.pricing.book import ENV_OVERLAY
from cachewise.usage import MAX_TOKEN_COUNT
from tests.ledger.conftest import Backend
from tests.ledger.conftest import backend as backend
from tests.strategies import hostile_texts, safe_texts

from .test_proxy import serve

MODEL = "claude-sonnet-4-6"
API_KEY = "sk-ant-trust-e2e"
MISSING = "<missing>"

# -- replies ------------------------------------------------------------------------------------

GOOD_USAGE = {
    "input_tokens": 1200,
    "output_tokens": 30,
    "cache_read_input_tokens": 4000,
    "cache_creation_input_tokens": 0,
}
ZERO_USAGE = dict.fromkeys(GOOD_USAGE, 0)
bad_counts = st.sampled_from([None, -5, "12", 1.5, [1], 2**70, MAX_TOKEN_COUNT + 1, {"n": 1}, True])
token_fields = st.sampled_from(sorted(GOOD_USAGE))
good_usages = st.one_of(
    st.just(GOOD_USAGE),
    st.just({**GOOD_USAGE, "cache_creation_input_tokens": None, "cache_read_input_tokens": None}),
    st.just(ZERO_USAGE),
    st.fixed_dictionaries({k: st.integers(0, 3_000_000) for k in GOOD_USAGE}),
)
never_counts = st.sampled_from([-5, "12", 1.5, [1], 2**70, MAX_TOKEN_COUNT + 1, {"n": 1}, True])
# The SDK's Usage has input_tokens and output_tokens required; the cache counts may be null.
bad_usages = st.one_of(
    st.just(MISSING),
    st.just(None),
    st.builds(
        lambda name, bad: {**GOOD_USAGE, name: bad},
        st.sampled_from(["input_tokens", "output_tokens"]),
        bad_counts,
    ),
    st.builds(lambda name, bad: {**GOOD_USAGE, name: bad}, token_fields, never_counts),
    st.builds(lambda bad: {**GOOD_USAGE, "cache_creation": {"ephemeral_1h_input_tokens": bad}}, never_counts),
    st.just([1, 2]),
    st.just("usage"),
)
usage_values = good_usages | bad_usages
header_text = st.text(alphabet=string.ascii_letters + string.digits + string.punctuation + " ", max_size=12)
odd_ids = st.one_of(
    header_text,
    st.just(""),
    st.integers(200, 3000).map(lambda n: "r" * n),
    st.just("req_' OR 1=1; --"),
)


RUNS = itertools.count()


@dataclass(repr=False)
class Reply:
    """One upstream answer: status, body bytes, request id; ``broken_at``: the body raises there.

    ``bad_usage``: a JSON reply whose usage cannot be trusted (its row must be unpriced).
    """

    status: int
    body: bytes
    request_id: str | None
    stream: bool
    broken_at: int | None = None
    bad_usage: bool = False

    @property
    def billed(self) -> bool:
        return self.status == 200

    def __repr__(self) -> str:  # short: hypothesis shows every argument of a failing example
        rid = (
            self.request_id
            if self.request_id is None or len(self.request_id) < 40
            else self.request_id[:40] + "…"
        )
        return (
            f"Reply({self.status}, {self.body[:300]!r}{'…' if len(self.body) > 300 else ''} "
            f"({len(self.body)} bytes), request_id={rid!r}, stream={self.stream}, "
            f"broken_at={self.broken_at}, bad_usage={self.bad_usage})"
        )

    def fresh(self, run: int) -> Reply:
        """This reply with ids of its own in example ``run`` (the ledger outlives one example)."""
        body = self.body.replace(b'"id": "msg_', f'"id": "msg_{run}_'.encode())
        request_id = None if self.request_id is None else f"x{run}{self.request_id}"
        return replace(self, body=body, request_id=request_id)


def fresh(calls: list[Reply]) -> list[Reply]:
    run = next(RUNS)
    return [reply.fresh(run) for reply in calls]


def _message(ident: str, model: str, usage: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": ident,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "ok"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
    }
    if usage != MISSING:
        body["usage"] = usage
    return body


def _event(data: dict[str, Any]) -> bytes:
    return f"event: {data['type']}\ndata: {json.dumps(data)}\n\n".encode()


GARBAGE = [
    b": keep-alive comment\n\n",
    b"event: ping\ndata: {}\n\n",
    b"data: {not json\n\n",
    b"event: message_delta\ndata: [1, 2]\n\n",
    b"just some words\n\n",
    b'event: content_block_delta\ndata: {"type": "content_block_delta"}\n\n',
    b"\xff\xfe\n\n",
]


@st.composite
def sse_bodies(draw: st.DrawFn, ident: str, model: str) -> bytes:
    """An SSE body: garbage lines anywhere, cut anywhere."""
    start_usage = draw(usage_values)
    parts: list[bytes] = []
    if draw(st.integers(0, 9)) > 0:  # sometimes no message_start at all
        parts.append(_event({"type": "message_start", "message": {**_message(ident, model, start_usage)}}))
    parts.append(
        _event({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    )
    parts.append(
        _event({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}})
    )
    parts.append(_event({"type": "content_block_stop", "index": 0}))
    delta_usage = draw(st.one_of(st.just(MISSING), usage_values))
    delta: dict[str, Any] = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}}
    if delta_usage != MISSING:
        delta["usage"] = delta_usage
    parts.append(_event(delta))
    ending = draw(st.sampled_from(["stop", "error", "none"]))
    if ending == "stop":
        parts.append(_event({"type": "message_stop"}))
    elif ending == "error":
        parts.append(
            _event({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
        )
    for _ in range(draw(st.integers(0, 3))):
        parts.insert(draw(st.integers(0, len(parts))), draw(st.sampled_from(GARBAGE)))
    body = b"".join(parts)
    if draw(st.booleans()):
        body = body[: draw(st.integers(0, len(body)))]  # cut short, anywhere (even mid-line)
    return body


@st.composite
def replies(draw: st.DrawFn, index: int, stream: bool) -> Reply:
    ident = f"msg_{index}" + draw(st.sampled_from(["", "", "\ud800", "\x00", "é"]))
    model = draw(st.sampled_from([MODEL, MODEL, MODEL, "claude-nope-1", "", "\udfff"]))
    request_id: str | None = draw(st.none() | odd_ids)
    if request_id is not None:
        # unique across replies, odd after the prefix; no edge spaces, which HTTP cannot carry
        request_id = f"e{index}-{request_id}".rstrip()
    kind = draw(st.sampled_from(["ok", "ok", "ok", "ok", "error", "not-json"]))
    if kind == "error":
        status = draw(st.sampled_from([400, 429, 500, 529]))
        error = {"type": "error", "error": {"type": "api_error", "message": "no"}}
        return Reply(status, json.dumps(error).encode(), request_id, stream)
    if kind == "not-json" and not stream:
        return Reply(200, b"<html>bad gateway?</html>", request_id, stream, bad_usage=True)
    if stream:
        body = draw(sse_bodies(ident, model))
        broken = draw(st.none() | st.integers(0, len(body)))
        return Reply(200, body, request_id, stream, broken_at=broken)
    bad = draw(st.booleans())
    usage = draw(bad_usages if bad else good_usages)
    text = json.dumps(_message(ident, model, usage)).encode()
    return Reply(200, text, request_id, stream, bad_usage=bad)


@st.composite
def scenarios(draw: st.DrawFn) -> list[Reply]:
    """Up to 6 calls; a reply with a request id may be answered again (the same call, billed once)."""
    stream = draw(st.booleans())
    out: list[Reply] = []
    for index in range(draw(st.integers(1, 6))):
        earlier = [r for r in out if r.request_id]
        if earlier and draw(st.integers(0, 4)) == 0:
            out.append(draw(st.sampled_from(earlier)))
        else:
            out.append(draw(replies(index, stream)))
    return out


tag_texts = st.one_of(safe_texts, hostile_texts(), st.integers(200, 1024).map(lambda n: "t" * n))
tag_maps = st.dictionaries(
    st.one_of(safe_texts.filter(bool), hostile_texts(), st.just("k" * 128)), tag_texts, max_size=3
)

VALID_OVERLAY = f"""
version: "negotiated-e2e"
overlay: true
models:
  - id: {MODEL}
    prices:
      - from: 2024-01-01
        input: "1.5"
        cache_write_5m: "1.875"
        cache_write_1h: "3"
        cache_read: "0.15"
        output: "7.5"
"""
BROKEN_OVERLAYS: list[str | bytes] = [
    'version: "a"\nmodles: []\n',
    'version: "a"\ncurrency: EUR\n',
    'version: "a"\nschema_version: 2\n',
    "- 1\n- 2\n",
    'version: "a"\nmodels: {id: x}\n',
    b'version: "a"\nmodels: []\n# \xff\xfe not utf-8\n',
    VALID_OVERLAY.replace("2024-01-01", "2024-02-30"),
    VALID_OVERLAY + VALID_OVERLAY.split("models:\n", 1)[1],  # the model listed twice
]
overlays = st.one_of(
    st.just(("none", None)),
    st.just(("env", VALID_OVERLAY)),
    st.just(("book", VALID_OVERLAY)),
    st.sampled_from(BROKEN_OVERLAYS).map(lambda text: ("broken", text)),
)


# -- the upstream ---------------------------------------------------------------------------------


class Body(httpx2.SyncByteStream, httpx2.AsyncByteStream):
    """A reply body that may break (``httpx2.ReadError``) after ``broken_at`` bytes."""

    def __init__(self, content: bytes, broken_at: int | None) -> None:
        self.content = content
        self.broken_at = broken_at

    def _chunks(self) -> Iterator[bytes]:
        end = len(self.content) if self.broken_at is None else self.broken_at
        for start in range(0, end, 97):
            yield self.content[start : min(start + 97, end)]
        if self.broken_at is not None:
            raise httpx2.ReadError("connection reset by the upstream")

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks()

    async def __aiter__(self) -> Any:
        for chunk in self._chunks():
            yield chunk


@dataclass(repr=False)
class Upstream:
    """Answers calls with the queued replies, in order; counts what it billed and what it refused."""

    queue: list[Reply] = field(default_factory=list)
    billed: set[str] = field(default_factory=set)
    billed_unnamed: int = 0
    error_ids: set[str] = field(default_factory=set)
    errors_unnamed: int = 0

    @property
    def errors(self) -> int:
        return len(self.error_ids) + self.errors_unnamed

    def __repr__(self) -> str:  # short: hypothesis shows it with every failing example
        return f"Upstream(billed={len(self.billed) + self.billed_unnamed}, errors={self.errors})"

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        reply = self.queue.pop(0)
        headers = {
            "content-type": "text/event-stream" if reply.stream and reply.billed else "application/json"
        }
        if reply.request_id is not None:
            headers["request-id"] = reply.request_id
        if reply.billed:
            if reply.request_id:
                self.billed.add(reply.request_id)
            else:
                self.billed_unnamed += 1
        elif reply.request_id:
            self.error_ids.add(reply.request_id)
        else:
            self.errors_unnamed += 1
        return httpx2.Response(reply.status, headers=headers, stream=Body(reply.body, reply.broken_at))


def _sdk(handler: Callable[[httpx2.Request], httpx2.Response]) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key=API_KEY,
        base_url="http://api.test",
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
        max_retries=0,
    )


def _outcome(client: anthropic.Anthropic, stream: bool) -> tuple[Any, ...]:
    """What the caller sees: the message (or the stream's events), or the exception's type."""
    request: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "hi"}],
    }
    seen: list[Any] = []
    try:
        if stream:
            with client.messages.create(**request, stream=True) as events:
                for item in events:
                    seen.append(item.to_dict())
            return ("ok", seen)
        return ("ok", client.messages.create(**request).to_dict())
    except Exception as exc:  # what the SDK raises for this reply, wrapped or not
        return ("raised", type(exc).__name__, getattr(exc, "status_code", None), seen)


# -- the ledger and the overlay ---------------------------------------------------------------------


@pytest.fixture
def e2e_ledger(backend: Backend) -> Iterator[Ledger]:
    with Ledger(backend.url, spool_dir=backend.spool_dir, flush_interval=0.05) as opened:
        yield opened


@contextmanager
def priced_by(kind: str, text: str | bytes | None, folder: Path) -> Iterator[PriceBook | None]:
    """Set up the overlay: in ``CACHEWISE_PRICE_TABLE`` (``env``, ``broken``) or as a ``book``."""
    previous = os.environ.pop(ENV_OVERLAY, None)
    try:
        book = None
        if text is not None:
            data = text if isinstance(text, bytes) else text.encode()
            path = folder / f"overlay-{hashlib.sha256(data).hexdigest()[:12]}.yaml"
            path.write_bytes(data)
            if kind == "book":
                book = PriceBook.load(path)
            else:
                os.environ[ENV_OVERLAY] = str(path)
        yield book
    finally:
        os.environ.pop(ENV_OVERLAY, None)
        if previous is not None:
            os.environ[ENV_OVERLAY] = previous


# -- the property -----------------------------------------------------------------------------------


@dataclass
class Tally:
    examples: int = 0
    calls: int = 0
    billed: int = 0
    rows: int = 0
    quarantined: int = 0
    error_rows: int = 0
    unpriced: int = 0
    started: float = field(default_factory=time.perf_counter)

    def figures(self) -> dict[str, float]:
        return {
            "examples": self.examples,
            "calls": self.calls,
            "billed": self.billed,
            "rows": self.rows,
            "quarantined": self.quarantined,
            "error_rows": self.error_rows,
            "unpriced": self.unpriced,
            "seconds": round(time.perf_counter() - self.started, 1),
        }


def _tokens(record: CallRecord) -> int:
    u = record.usage
    return (
        u.input_tokens
        + u.output_tokens
        + u.cache_read_input_tokens
        + u.ephemeral_5m_input_tokens
        + u.ephemeral_1h_input_tokens
        + u.web_search_requests
    )


@dataclass
class Seen:
    """What the ledger and the upstream held before this example (the ledger lives for the test)."""

    row_ids: set[str] = field(default_factory=set)
    quarantined: int = 0
    billed_ids: set[str] = field(default_factory=set)
    billed: int = 0
    errors: int = 0


def snapshot(ledger: Ledger, upstream: Upstream) -> Seen:
    """What the ledger and the upstream hold before an example (failed examples leave rows too)."""
    ledger.flush()
    return Seen(
        row_ids={r.request_id for r in ledger.calls()},
        quarantined=ledger.quarantine_count(),
        billed_ids=set(upstream.billed),
        billed=len(upstream.billed) + upstream.billed_unnamed,
        errors=upstream.errors,
    )


def check_ledger(
    ledger: Ledger, upstream: Upstream, seen: Seen, calls: list[Reply], tally: Tally, *, broken_overlay: bool
) -> None:
    """The property, after one ``flush()``, over what this example added."""
    ledger.flush()
    rows = [r for r in ledger.calls() if r.request_id not in seen.row_ids]
    quarantined = ledger.quarantined()  # newest first
    new_quarantined = quarantined[: len(quarantined) - seen.quarantined]
    assert ledger.quarantine_count() == len(quarantined)
    billed = len(upstream.billed) + upstream.billed_unnamed - seen.billed
    errors = upstream.errors - seen.errors
    ok_rows = [r for r in rows if r.status != "error"]
    error_rows = [r for r in rows if r.status == "error"]
    # every answered call is a row or a quarantined record with its reason
    assert len(rows) + len(new_quarantined) == billed + errors, (
        len(rows),
        len(new_quarantined),
        billed,
        errors,
    )
    assert len(error_rows) <= errors
    for entry in new_quarantined:
        assert entry.reason and entry.raw_record
    # a bad row never delays a good one: every billed id is readable after this one flush()
    found = {r.request_id for r in ok_rows} | {q.request_id for q in new_quarantined}
    missing = upstream.billed - seen.billed_ids - found
    assert not missing, missing
    # no row reads $0 unless its usage counts zero tokens; unpriced rows say why
    for row in ok_rows:
        if row.cost is None:
            assert row.cost_error, row
            tally.unpriced += 1
        else:
            assert row.cost_error is None, row
            assert row.cost.cost_total > 0 or _tokens(row) == 0, row
            assert not broken_overlay, f"a broken overlay priced a row: {row}"
    # a reply whose usage cannot be trusted is never priced (a repeat shares its fate)
    by_id = {r.request_id: r for r in ok_rows}
    for reply in calls:
        kept = by_id.get(reply.request_id or "")
        if reply.bad_usage and kept is not None:
            assert kept.cost is None and kept.cost_error, (reply, kept)
    tally.rows += len(rows)
    tally.quarantined += len(new_quarantined)
    tally.error_rows += len(error_rows)
    tally.billed += billed


SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


# -- the wrapped SDK --------------------------------------------------------------------------------


@pytest.fixture
def sdk_run(e2e_ledger: Ledger, backend: Backend, tmp_path: Path) -> Iterator[tuple[Upstream, Tally]]:
    tally = Tally()
    yield Upstream(), tally
    print(f"\nsdk-{backend.name}: {json.dumps(tally.figures())}")


@SETTINGS
@given(calls=scenarios(), tags=tag_maps, overlay=overlays)
def test_hostile_replies_through_the_wrapped_sdk(
    calls: list[Reply],
    tags: dict[str, str],
    overlay: tuple[str, str | bytes | None],
    sdk_run: tuple[Upstream, Tally],
    e2e_ledger: Ledger,
    tmp_path: Path,
) -> None:
    upstream, tally = sdk_run
    seen = snapshot(e2e_ledger, upstream)
    kind, text = overlay
    event(f"overlay: {kind}")
    calls = fresh(calls)
    plain = Upstream(queue=list(calls))  # the same replies for a client without cachewise
    upstream.queue = list(calls)
    with (
        priced_by(kind, text, tmp_path) as book,
        raising(False),
        _sdk(plain) as unwrapped,
        _sdk(upstream) as raw,
    ):
        wrapped = cachewise.wrap(raw, ledger=e2e_ledger, planner=False, book=book)
        with cachewise.tags(tags):
            for reply in calls:
                expected = _outcome(unwrapped, reply.stream)
                assert _outcome(wrapped, reply.stream) == expected  # the caller gets the upstream's answer
        tally.examples += 1
        tally.calls += len(calls)
        check_ledger(e2e_ledger, upstream, seen, calls, tally, broken_overlay=kind == "broken")


# -- the proxy ---------------------------------------------------------------------------------------


@pytest.fixture
def proxy_run(e2e_ledger: Ledger, backend: Backend) -> Iterator[tuple[str, CallTracker, Upstream, Tally]]:
    upstream = Upstream()
    tracker = CallTracker(ledger=e2e_ledger, planner=None)
    app = create_proxy_app(tracker, upstream="http://api.invalid", transport=httpx2.MockTransport(upstream))
    tally = Tally()
    with raising(False):
        for base_url in serve(app):
            yield base_url, tracker, upstream, tally
    print(f"\nproxy-{backend.name}: {json.dumps(tally.figures())}")


@SETTINGS
@given(calls=scenarios(), tags=tag_maps, overlay=overlays)
def test_hostile_replies_through_the_proxy(
    calls: list[Reply],
    tags: dict[str, str],
    overlay: tuple[str, str | bytes | None],
    proxy_run: tuple[str, CallTracker, Upstream, Tally],
    e2e_ledger: Ledger,
    tmp_path: Path,
) -> None:
    base_url, tracker, upstream, tally = proxy_run
    seen = snapshot(e2e_ledger, upstream)
    kind, text = overlay
    calls = fresh(calls)
    upstream.queue = list(calls)
    with priced_by(kind, text, tmp_path) as book, httpx2.Client(base_url=base_url, timeout=10) as client:
        tracker.book = book
        tracker.tags = dict(tags)
        for reply in calls:
            body = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
            if reply.stream:
                body["stream"] = True
            got = b""
            with client.stream("POST", "/v1/messages", json=body, headers={"x-api-key": API_KEY}) as answer:
                try:
                    for chunk in answer.iter_raw():
                        got += chunk
                except httpx2.TransportError:
                    assert reply.broken_at is not None  # only an upstream that broke mid-body cuts ours
            assert answer.status_code == reply.status
            if reply.broken_at is None:
                assert got == reply.body  # byte for byte
            else:  # what arrived before the upstream broke off, and nothing else
                assert reply.body[: reply.broken_at].startswith(got)
            if reply.request_id:
                assert answer.headers.get("request-id") == reply.request_id
        tally.examples += 1
        tally.calls += len(calls)
        check_ledger(e2e_ledger, upstream, seen, calls, tally, broken_overlay=kind == "broken")


# -- regressions the suite found ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"",  # the connection closed before the first event
        _event({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
        + _event({"type": "message_stop"}),
        _event({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    ],
    ids=["empty", "no-message-start", "error-first"],
)
def test_a_billed_stream_without_message_start_is_an_unpriced_row(body: bytes, e2e_ledger: Ledger) -> None:
    """A 200 stream is billed; with no ``message_start`` nothing says what it cost: an incomplete,
    unpriced row (``cost_error``), not an error row that reads $0 (found by the suite above)."""
    upstream = Upstream(queue=[Reply(200, body, "req_no_start", stream=True)])
    with _sdk(upstream) as raw, raising(False):
        wrapped = cachewise.wrap(raw, ledger=e2e_ledger, planner=False)
        _outcome(wrapped, stream=True)
    e2e_ledger.flush()
    (row,) = e2e_ledger.calls()
    assert (row.request_id, row.status, row.incomplete) == ("req_no_start", "incomplete", True)
    assert row.cost is None
    assert row.cost_error is not None and "usage is missing" in row.cost_error
