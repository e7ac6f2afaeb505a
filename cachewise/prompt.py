"""A Messages request body as ordered cache positions, with a canonical hash of every prefix.

The request stays a plain dict (the SDK's ``MessageParam`` / ``TextBlockParam`` shapes);
:class:`Prompt` only reads it. Layout (docs/api-notes.md §1.1):

* order ``tools`` → ``system`` → ``messages``;
* one position per tool, per system text block (a string system is one), per message
  content block (a string content is one); with ``collapse_runs`` (the Claude API) a run of
  consecutive ``tool_use`` blocks is one position, and so is a run of ``tool_result`` blocks;
  the marker of a run goes on its last block. Without ``collapse_runs`` each block of a run is a
  position, and those before the run's last block are ``inside_run`` (the planner never marks
  them: what a marker inside a run does is read differently, docs/planner.md).

Prefix hash: a running SHA-256 seeded with the model. Each position adds the canonical
JSON of its blocks with every ``cache_control`` removed. Envelope keys are sorted; the
key order *inside* user JSON (``tool_use.input``, a tool's ``input_schema``) is kept,
because the API renders those bytes and a reordered object misses (docs/api-notes.md §2.4). Each
level is salted with the settings that invalidate it (docs/api-notes.md §2.4): ``speed``, web
search and citations toggles before ``system``; ``tool_choice`` (with
``disable_parallel_tool_use``), the image count, thinking config and
``output_config.effort`` before ``messages``. Defaults equal omission. So a prefix hash
changes exactly when the API would see a different prefix.

Byte sizes give offline token bounds (see :mod:`cachewise.tokens`): ``nbytes`` is the
canonical size (tokens ≤ bytes), ``text_bytes`` the non-whitespace text outside binary
payloads (tokens ≥ text_bytes / 8, a heuristic).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any, Literal

from .api_rules import COUNT_TOKENS_REFUSED_TOOL_PREFIXES, RUN_BLOCK_TYPES, Ttl

_orjson: Any
try:  # the ``fast`` extra: the same canonical bytes, written faster
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised where orjson is not installed
    _orjson = None

__all__ = [
    "Level",
    "Marker",
    "Position",
    "Prompt",
    "Ttl",
    "canonical_json",
    "orjson_bytes",
    "strip_cache_control",
]

Level = Literal["tools", "system", "messages"]

_UNMARKABLE = {
    "thinking": "thinking blocks cannot carry cache_control",
    "redacted_thinking": "redacted_thinking blocks cannot carry cache_control",
}
_RUN_TYPES = RUN_BLOCK_TYPES
_ORDERED_KEYS = frozenset({"input", "input_schema"})
_BINARY_KEYS = frozenset({"data"})
_HASH_VERSION = b"cachewise-prefix-v1\x00"


def strip_cache_control(value: Any) -> Any:
    """A copy of ``value`` without any ``cache_control`` key, at any depth."""
    if isinstance(value, Mapping):
        return {k: strip_cache_control(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list | tuple):
        return [strip_cache_control(v) for v in value]
    return value


def _canon(value: Any, ordered: bool) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, dict | Mapping):
        keys = list(value.keys()) if ordered else sorted(value.keys(), key=str)
        return {str(k): _canon(value[k], ordered or k in _ORDERED_KEYS) for k in keys if k != "cache_control"}
    if isinstance(value, list | tuple):
        return [_canon(v, ordered) for v in value]
    return value


_SCALARS = (str, int, float, bool, type(None))
_SCALAR_TYPES = frozenset(_SCALARS)
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_HEADS = {
    role: json.dumps({"message": True, "role": role}, separators=(",", ":")).encode()
    for role in ("user", "assistant", "system")
}
#: Keys whose presence anywhere below a sorted level needs the general canonical path.
_SPECIAL_SORTED = frozenset({"cache_control", *_ORDERED_KEYS})
_SPECIAL_ORDERED = frozenset({"cache_control"})


def _not_serialisable(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _make_encoder(sort_keys: bool) -> Callable[[Any], str]:
    """The C encoder of :mod:`json` (``_ENCODER``'s settings), called without per-call set-up."""
    if c_make_encoder is None:  # pragma: no cover - CPython always has it
        slow = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys)
        return slow.encode
    # markers=None: no circular check (a body parsed from JSON has no cycles; a cyclic dict
    # recurses until RecursionError, which the planner treats like any internal failure).
    encode = c_make_encoder(
        None, _not_serialisable, encode_basestring, None, ":", ",", sort_keys, False, True
    )

    def run(value: Any) -> str:
        return "".join(encode(value, 0))

    return run


_encode_sorted = _make_encoder(True)
_encode_plain = _make_encoder(False)


_NO_KEYS: frozenset[str] = frozenset()
_I64_MIN = -(2**63)
_U64_END = 2**64
_ORJSON_SORT = 0 if _orjson is None else _orjson.OPT_SORT_KEYS


def _plain(value: Any, special: frozenset[str]) -> int:
    """How ``value`` can be written: 2 by orjson (the same bytes as :mod:`json`), 1 by the C encoder
    of :mod:`json`, 0 only by the general path (a key in ``special`` or not a string, another type).

    orjson writes what :mod:`json` writes for strings, booleans, ``None``, 64-bit integers and
    finite floats written without an exponent by both (0 and 1e-4 <= |x| < 1e16); other numbers
    go to the C encoder.
    """
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return 2
    if kind is int:
        return 2 if _I64_MIN <= value < _U64_END else 1
    if kind is float:
        return 2 if value == 0 or 1e-4 <= abs(value) < 1e16 else 1
    if kind is dict:
        for k in value:
            if type(k) is not str or k in special:
                return 0
        items = value.values()
    elif kind is list or kind is tuple:
        items = value
    else:
        return 0
    best = 2
    for v in items:
        if type(v) is str:
            continue
        found = _plain(v, special)
        if found < best:
            if found == 0:
                return 0
            best = found
    return best


def orjson_bytes(value: Any, *, sort: bool = False) -> bytes | None:
    """``value`` in compact JSON written by orjson (the ``fast`` extra) when that is the same bytes
    :mod:`json` writes, else ``None``: orjson missing, a value :func:`_plain` keeps from it, or a
    lone surrogate (orjson writes UTF-8 only)."""
    if _orjson is None or _plain(value, _NO_KEYS) != 2:
        return None
    try:
        data: bytes = _orjson.dumps(value, option=_ORJSON_SORT) if sort else _orjson.dumps(value)
    except TypeError:
        return None
    return data


def _dump(value: Any, sort: bool) -> bytes:
    """``value`` (a :func:`_plain` one) in compact JSON, by orjson where it writes the same bytes."""
    data = orjson_bytes(value, sort=sort)
    if data is not None:
        return data
    return (_encode_sorted(value) if sort else _encode_plain(value)).encode()


def _fast_canonical(value: dict[str, Any]) -> bytes | None:
    """``canonical_json`` of a plain ``dict`` by orjson or the C encoder, or ``None``: the general path.

    Same bytes as the general path: envelope keys sorted, every ``cache_control`` dropped, the
    values of ``input`` / ``input_schema`` in their own key order.
    """
    nested = False
    for k, v in value.items():
        if type(v) not in _SCALAR_TYPES:
            if k == "input" or k == "cache_control":
                continue
            nested = True
            break
    if not nested:
        if "cache_control" not in value and "input" not in value:
            return _dump(value, True)
        # text, tool_use, thinking, string tool_result: the input in its own order, as given.
        return _dump({k: value[k] for k in sorted(value) if k != "cache_control"}, False)
    if not all(type(k) is str for k in value):
        return None  # a key that is not a string: the general path says how it is written
    parts: list[bytes] = []
    for k in sorted(value):
        if k == "cache_control":
            continue
        v = value[k]
        ordered = k in _ORDERED_KEYS
        how = _plain(v, _SPECIAL_ORDERED if ordered else _SPECIAL_SORTED)
        if how == 0:
            return None
        if how == 2 and _orjson is not None:
            data = _orjson.dumps(v) if ordered else _orjson.dumps(v, option=_ORJSON_SORT)
        else:
            data = (_encode_plain(v) if ordered else _encode_sorted(v)).encode()
        parts.append(encode_basestring(k).encode() + b":" + data)
    return b"{" + b",".join(parts) + b"}"


def canonical_json(value: Any, *, sort_all: bool = False) -> bytes:
    """Canonical bytes of a block: no ``cache_control``, envelope keys sorted, user JSON in its order.

    ``sort_all`` sorts user JSON too (the lint compares both to find key-order churn).
    """
    if not sort_all and type(value) is dict:
        fast = _fast_canonical(value)
        if fast is not None:
            return fast
    data = _canon(value, False) if not sort_all else _sorted(value)
    return _ENCODER.encode(data).encode()


def _sorted(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _sorted(value[k]) for k in sorted(value, key=str) if k != "cache_control"}
    if isinstance(value, list | tuple):
        return [_sorted(v) for v in value]
    return value


#: What ``str.split()`` takes for whitespace among ASCII characters.
_ASCII_SPACE = b" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"


def _squeezed_bytes(text: str) -> int:
    if text.isascii():
        return len(text.encode("ascii").translate(None, _ASCII_SPACE))
    squeezed = "".join(text.split())
    return len(squeezed.encode())


def _str_mass(text: str) -> int:
    """Non-whitespace bytes of ``text``; long texts (a system prompt sent on every call) are memoised."""
    if len(text) >= _MASS_MEMO_MIN_CHARS:
        return _long_str_mass(text)
    return _squeezed_bytes(text)


_MASS_MEMO_MIN_CHARS = 2048


@functools.lru_cache(maxsize=512)
def _long_str_mass(text: str) -> int:
    return _squeezed_bytes(text)


def _text_mass(value: Any, key: str | None = None) -> int:
    """Non-whitespace bytes of the text in ``value``, skipping binary payloads (``source.data``).

    The ``data`` of a text source (a plain-text document, ``{"type": "text", "data": ...}``) is
    text the model reads, so it counts; any other ``data`` is a payload and does not.
    """
    if type(value) is str or isinstance(value, str):
        if key in _BINARY_KEYS:
            return 0
        return _str_mass(value)
    if type(value) is dict or isinstance(value, Mapping):
        kind = value.get("type")
        if kind == "base64" or kind == "url" or kind == "file":
            return 0
        binary: frozenset[str] = _BINARY_KEYS if kind != "text" else frozenset()
        total = 0
        short: list[str] = []  # whitespace is per character: one squeeze of them all adds up the same
        for k, v in value.items():
            kind_v = type(v)
            if kind_v is str:
                if k not in binary:
                    if len(v) >= _MASS_MEMO_MIN_CHARS:
                        total += _long_str_mass(v)
                    else:
                        short.append(v)
            elif kind_v is int or kind_v is float or kind_v is bool or v is None or k == "cache_control":
                continue
            else:
                total += _text_mass(v, k)
        if short:
            total += _squeezed_bytes("".join(short))
        return total
    if isinstance(value, list | tuple):
        return sum(_text_mass(v, key) for v in value)
    return 0


def _ttl_of(marker: Any) -> Ttl:
    if isinstance(marker, Mapping) and marker.get("ttl") == "1h":
        return "1h"
    return "5m"  # a marker without ttl counts as 5m (docs/api-notes.md §1.4)


@dataclass(frozen=True, slots=True)
class Marker:
    """A ``cache_control`` marker already in the request (the caller's)."""

    path: str
    position: int
    ttl: Ttl
    nested: bool = False


@dataclass(frozen=True, slots=True)
class Position:
    """One cache position; ``path`` is the block a marker for it goes on (the last block of a run).

    ``inside_run`` is true only without ``collapse_runs``, for a ``tool_use`` / ``tool_result``
    block followed by another of its type in the same message (not the end of its run).
    """

    index: int
    level: Level
    path: str
    kind: str
    message: int | None
    block: int | None
    role: str | None
    markable: bool
    why_not: str | None
    nbytes: int
    text_bytes: int
    prefix_hash: str
    message_end: bool = False
    inside_run: bool = False

    @property
    def plannable(self) -> bool:
        """The planner may put a marker here: markable, and at the end of its run (if in one)."""
        return self.markable and not self.inside_run


#: The salts already written, keyed by exactly what they are made of (a request repeats its
#: settings on every call). Bounded: emptied when full.
_SALTS: dict[Any, bytes] = {}
_SALTS_MAX = 256


def _salted(key: Any, make: Callable[[], bytes]) -> bytes:
    found = _SALTS.get(key)
    if found is None:
        found = make()
        if len(_SALTS) >= _SALTS_MAX:
            _SALTS.clear()
        _SALTS[key] = found
    return found


def _salt_system(body: Mapping[str, Any], citations: bool) -> bytes:
    tools = body.get("tools") or []
    web = any(isinstance(t, Mapping) and str(t.get("type", "")).startswith("web_search") for t in tools)
    speed = body.get("speed") or "standard"

    def make() -> bytes:
        return canonical_json({"speed": speed, "web_search": web, "citations": citations})

    if type(speed) is not str:
        return make()  # a speed that is not a string: written afresh, not kept
    return _salted(("system", speed, web, citations), make)


def _images(value: Any) -> int:
    if isinstance(value, Mapping):
        if value.get("type") == "image":
            return 1
        return sum(_images(v) for k, v in value.items() if k in ("content", "source"))
    if isinstance(value, list | tuple):
        return sum(_images(v) for v in value)
    return 0


def _salt_messages(body: Mapping[str, Any], count: int) -> bytes:
    """The salt of the messages level, kept by the JSON of what it is made of (written by orjson,
    which names a value exactly: :func:`orjson_bytes`); made afresh where orjson cannot say."""
    choice, thinking, output = body.get("tool_choice"), body.get("thinking"), body.get("output_config")
    if choice is None and thinking is None and output is None:
        key: Any = ("messages", b"", count)
    else:
        settings = orjson_bytes([choice, thinking, output])
        if settings is None:
            return _make_salt_messages(body, count)
        key = ("messages", settings, count)
    return _salted(key, lambda: _make_salt_messages(body, count))


def _make_salt_messages(body: Mapping[str, Any], count: int) -> bytes:
    choice = body.get("tool_choice")
    choice_map = dict(choice) if isinstance(choice, Mapping) else {"type": "auto"}
    parallel_off = bool(choice_map.pop("disable_parallel_tool_use", False))
    thinking = body.get("thinking")
    mode: Any = "disabled"
    if isinstance(thinking, Mapping):
        kind = thinking.get("type", "disabled")
        mode = [kind, thinking.get("budget_tokens")] if kind == "enabled" else kind
    output = body.get("output_config")
    effort = output.get("effort") if isinstance(output, Mapping) else None
    # "Adding/removing images anywhere in the prompt" invalidates messages, a second image too:
    # the salt holds the count (encoded as before for 0 and 1 image, so those hashes are unchanged).
    images: bool | int = count if count > 1 else bool(count)
    return canonical_json(
        {
            "tool_choice": choice_map,
            "disable_parallel_tool_use": parallel_off,
            "images": images,
            "thinking": mode,
            "effort": effort or "high",
        }
    )


def _is_map(value: Any) -> bool:
    return type(value) is dict or isinstance(value, Mapping)


def _block_markable(block: Mapping[str, Any]) -> str | None:
    kind = block.get("type")
    if not isinstance(kind, str):
        return "block has no type"
    if kind in _UNMARKABLE:
        return _UNMARKABLE[kind]
    if kind == "text" and not str(block.get("text") or "").strip():
        return "empty text blocks cannot carry cache_control"
    return None


def _system_markable(block: Any) -> str | None:
    if not isinstance(block, Mapping):
        return "a system entry must be a text block object"
    if block.get("type") != "text":
        return "system blocks must be text blocks"
    return _block_markable(block)


def _text_block_bytes(text: str) -> bytes:
    """``canonical_json({"type": "text", "text": text})`` (a string system or content)."""
    return b'{"text":' + encode_basestring(text).encode() + b',"type":"text"}'


@functools.lru_cache(maxsize=256)
def _long_string_bytes(text: str) -> bytes:
    return _text_block_bytes(text)


_STRING_MEMO_MIN_CHARS = 256


def _string_bytes(text: str) -> bytes:
    """:func:`_text_block_bytes`; a longer text (a system prompt sent on every call) is memoised."""
    return _long_string_bytes(text) if len(text) >= _STRING_MEMO_MIN_CHARS else _text_block_bytes(text)


def _string_mass(text: str) -> int:
    """:func:`_str_mass`, memoised from :data:`_STRING_MEMO_MIN_CHARS` (a string system or content)."""
    return _long_str_mass(text) if len(text) >= _STRING_MEMO_MIN_CHARS else _squeezed_bytes(text)


@functools.lru_cache(maxsize=64)
def _seed(model: str) -> bytes:
    """The state every prefix hash of ``model`` starts from."""
    return _sha256(_HASH_VERSION + model.encode()).digest()


#: The sizes whose hash step :func:`_long_step` keeps: from 2 kB (below, hashing is cheaper than the
#: lookup) to 1 MB (64 kept steps hold their bytes: 64 MB at most).
_STEP_MIN_BYTES = 2048
_STEP_MAX_BYTES = 1024 * 1024


@functools.lru_cache(maxsize=64)
def _long_step(state: bytes, data: bytes) -> bytes:
    return _sha256(state + data).digest()


#: What one block contributes: canonical bytes, text mass, why it cannot carry a marker (or
#: ``None``), its kind (``str`` of its type), its image count and citations flag (the salts),
#: whether it may hold a marker, and whether any of the last three is set.
_Entry = tuple[bytes, int, str | None, str, int, bool, bool, bool]


def _entry(block: Mapping[str, Any], may_mark: bool = True) -> _Entry:
    kind = block.get("type")
    images = 0
    citations = False
    if kind == "image":
        images = 1
    else:
        if kind == "document":
            cit = block.get("citations")
            citations = bool(isinstance(cit, Mapping) and cit.get("enabled"))
        if "content" in block:
            inner = block["content"]
            if type(inner) is not str and inner is not None:
                images += _images(inner)
        if "source" in block:
            inner = block["source"]
            if type(inner) is not str and inner is not None:
                images += _images(inner)
    return (
        canonical_json(block),
        _text_mass(block),
        _block_markable(block),
        str(kind),
        images,
        citations,
        may_mark,
        bool(images or citations or may_mark),
    )


def _not_a_block(value: Any) -> _Entry:
    """The entry of a content item that is not an object: written as a block of unknown type."""
    data, mass, *_ = _UNKNOWN_ENTRY
    images = _images(value)
    return data, mass, "block is not an object", "?", images, False, False, bool(images)


#: Entries of the blocks seen lately, keyed by the block's JSON as orjson writes it (keys in the
#: order given): an agent's request repeats every earlier turn, so most blocks were read before.
#: Those bytes name the block's value exactly (orjson refuses what it cannot write: integers
#: past 64 bits, keys that are not strings, lone surrogates, mappings that are not dicts), except
#: ``null``, which NaN and infinities are written as too: a block whose JSON holds it is never kept.
#: A large block (a long system prompt sent on every call) is kept apart, in :data:`_LARGE`, which
#: holds few, by a sample of its key (:func:`_sample`: the length and three short slices), next to
#: the key itself: a lookup compares the whole key with the kept one (one ``memcmp``) instead of
#: hashing all of its bytes, which cost three times as much for a 40 kB block. Two keys of one sample
#: share a slot (the later one is kept); a key is only ever answered by an entry kept for the same
#: bytes. Its entry's bytes are then the same object on every call, so that their prefix hash is kept
#: too (:func:`_long_step`).
_BLOCKS: dict[bytes, _Entry] = {}
_BLOCKS_MAX = 16384
_BLOCK_MAX_BYTES = 4096
_LARGE: dict[tuple[int, bytes, bytes, bytes], tuple[bytes, _Entry]] = {}
_SAMPLE_BYTES = 64
_LARGE_MAX = 64
_LARGE_MAX_BYTES = 4 * 1024 * 1024  # the keys and entries held, about twice this at most
_large_bytes = 0
_MARKER_KEY = b'"cache_control":'


def _keep(key: bytes, block: dict[str, Any]) -> _Entry:
    """The entry of ``block`` (orjson wrote it as ``key``), kept in :data:`_BLOCKS` where that is exact."""
    if b"null" in key:
        return _entry(block)
    if len(key) > _BLOCK_MAX_BYTES:
        return _keep_large(key, block)
    if len(_BLOCKS) >= _BLOCKS_MAX:
        _BLOCKS.clear()
    entry = _BLOCKS[key] = _entry(block, _MARKER_KEY in key)
    return entry


def _keep_large(key: bytes, block: dict[str, Any]) -> _Entry:
    """:func:`_keep` for a block above :data:`_BLOCK_MAX_BYTES`: kept in :data:`_LARGE`, emptied when full."""
    global _large_bytes
    entry = _entry(block, _MARKER_KEY in key)
    if len(key) > _LARGE_MAX_BYTES:
        return entry
    if len(_LARGE) >= _LARGE_MAX or _large_bytes + len(key) > _LARGE_MAX_BYTES:
        _LARGE.clear()
        _large_bytes = 0
    sample = _sample(key)
    replaced = _LARGE.get(sample)
    if replaced is not None:  # another key of the same sample: this one takes its slot
        _large_bytes -= len(replaced[0])
    _LARGE[sample] = (key, entry)
    _large_bytes += len(key)
    return entry


def _sample(key: bytes) -> tuple[int, bytes, bytes, bytes]:
    """A large key's slot in :data:`_LARGE`: its length and its first, middle and last 64 bytes."""
    size, middle = len(key), len(key) // 2
    return size, key[:_SAMPLE_BYTES], key[middle : middle + _SAMPLE_BYTES], key[-_SAMPLE_BYTES:]


def _known(key: bytes) -> _Entry | None:
    """The kept entry of the block orjson wrote as ``key``, if any."""
    if len(key) <= _BLOCK_MAX_BYTES:
        return _BLOCKS.get(key)
    kept = _LARGE.get(_sample(key))
    return kept[1] if kept is not None and kept[0] == key else None


def _read_block(block: dict[str, Any]) -> _Entry:
    """The :data:`_Entry` of a ``dict`` block."""
    if _orjson is None:
        return _entry(block)
    try:
        key: bytes = _orjson.dumps(block)
    except Exception:  # not writable by orjson: the general path says how it is written
        return _entry(block)
    return _known(key) or _keep(key, block)


def _read_content(content: list[Any] | tuple[Any, ...]) -> list[_Entry]:
    """The entries of a message's content blocks (one orjson call and one lookup per block)."""
    if _orjson is not None:
        try:
            keys = list(map(_orjson.dumps, content))
        except Exception:  # a block orjson cannot write: block by block
            pass
        else:
            entries: list[_Entry | None] = list(map(_BLOCKS.get, keys))
            if None in entries:
                for i, entry in enumerate(entries):
                    if entry is None:
                        block = content[i]
                        entries[i] = (
                            (_known(keys[i]) or _keep(keys[i], block))
                            if type(block) is dict
                            else _other_block(block)
                        )
            return entries  # type: ignore[return-value]  # no None is left
    return [_read_block(b) if type(b) is dict else _other_block(b) for b in content]


class _Segment:
    """What one message contributes, kept in :data:`_MESSAGES`: its positions' bytes, masses, kinds
    and rows, its image count and citations flag; and the prefix hashes it chains to from a given
    state (``chain``: state before → the positions' hex hashes and the state after)."""

    __slots__ = ("chain", "citations", "data", "images", "key", "kinds", "masses", "rows")

    def __init__(
        self,
        key: tuple[int, bool, bytes],
        data: tuple[bytes, ...],
        masses: tuple[int, ...],
        kinds: tuple[str, ...],
        rows: tuple[_Row, ...],
        images: int,
        citations: bool,
    ) -> None:
        self.key = key
        self.data = data
        self.masses = masses
        self.kinds = kinds
        self.rows = rows
        self.images = images
        self.citations = citations
        self.chain: dict[bytes, tuple[tuple[str, ...], bytes]] = {}

    def chained(self, state: bytes, hexes: tuple[str, ...], after: bytes) -> None:
        chain = self.chain
        if len(chain) >= _CHAIN_MAX:
            chain.clear()
        chain[state] = (hexes, after)


#: The messages seen lately, keyed by (index, collapse_runs, the message's JSON as orjson writes
#: it): an agent's request repeats every earlier message at the same index. Like the block memo,
#: a message whose JSON holds ``null`` (NaN is written so too) is not kept, nor one holding a
#: caller's marker, nor one larger than 16 KB; a string content is read from its own memo instead.
_MESSAGES: dict[tuple[int, bool, bytes], _Segment] = {}
_MESSAGES_MAX = 8192
_MESSAGE_MAX_BYTES = 16384
_CHAIN_MAX = 8  # states a message's hashes are kept from (histories that share the message)


#: The positions made lately (:meth:`Prompt.position`), keyed by everything one is made of: its
#: index, prefix hash, row, sizes and the tools' end (a system block's path counts from it). Positions
#: are frozen values, so a later request's equal position is the same object. Emptied when full.
_POSITIONS: dict[tuple[int, str, _Row, int, int, int], Position] = {}
_POSITIONS_MAX = 8192


def _forget() -> None:
    """Empty every memo of this module: what is read next is read as if never seen (tests, benchmarks)."""
    global _large_bytes
    _BLOCKS.clear()
    _LARGE.clear()
    _large_bytes = 0
    _POSITIONS.clear()
    _MESSAGES.clear()
    _SALTS.clear()
    _long_string_bytes.cache_clear()
    _long_str_mass.cache_clear()
    _long_step.cache_clear()
    _seed.cache_clear()


def _message_key(m: int, collapse_runs: bool, message: Any) -> tuple[int, bool, bytes] | None:
    """The key of ``message`` in :data:`_MESSAGES`, or ``None`` where it cannot be kept."""
    if _orjson is None or type(message) is not dict:
        return None
    content = message.get("content")
    if type(content) is not list and type(content) is not tuple:
        return None
    try:
        raw: bytes = _orjson.dumps(message)
    except Exception:  # not writable by orjson: read block by block
        return None
    if len(raw) > _MESSAGE_MAX_BYTES or b"null" in raw or _MARKER_KEY in raw:
        return None
    return (m, collapse_runs, raw)


class _Messages:
    """The messages read once: each position's bytes, mass, kind, row and the caller's markers,
    and what the salts need (citations turned on, the image count). Hashed by :class:`Prompt`.

    ``segments`` names the messages read from (or kept in) :data:`_MESSAGES`: (index of their
    first position among these, the segment), so :class:`Prompt` can reuse their chained hashes.
    """

    __slots__ = ("citations", "data", "images", "kinds", "markable", "marks", "masses", "rows", "segments")

    def __init__(self, messages: Any, collapse_runs: bool) -> None:
        data: list[bytes] = []
        masses: list[int] = []
        kinds: list[str] = []
        rows: list[_Row] = []
        marks: list[tuple[str, int, Any, bool]] = []  # path, index among these positions, marker, nested
        segments: list[tuple[int, _Segment]] = []
        citations = False
        images = 0
        heads = _HEADS
        run_types = _RUN_TYPES
        add_data, add_mass, add_kind, add_row = data.append, masses.append, kinds.append, rows.append
        memo = _MESSAGES

        def mark(path: str, value: Any, nested: bool = False) -> None:
            if isinstance(value, Mapping):
                marks.append((path, len(data), value, nested))

        def mark_inner(path: str, inner: Any) -> None:
            """Markers inside ``tool_result.content`` / ``document.source.content`` (nested)."""
            for n, item in enumerate(inner if isinstance(inner, list | tuple) else []):
                if isinstance(item, Mapping):
                    mark(f"{path}.{n}", item.get("cache_control"), True)

        def special(m: int, k: int, entry: _Entry, sub: Any) -> None:
            """The salts' counts of one block, and the caller's markers in it."""
            nonlocal images, citations
            images += entry[4]
            citations = citations or entry[5]
            if entry[6]:
                if "cache_control" in sub:
                    mark(f"messages.{m}.content.{k}", sub["cache_control"])
                sub_kind = sub.get("type")
                if sub_kind == "tool_result":
                    mark_inner(f"messages.{m}.content.{k}.content", sub.get("content"))
                elif sub_kind == "document":
                    source = sub.get("source")
                    if isinstance(source, Mapping):
                        mark_inner(f"messages.{m}.content.{k}.source.content", source.get("content"))

        for m, message in enumerate(messages):
            key = _message_key(m, collapse_runs, message)
            if key is not None:
                seg = memo.get(key)
                if seg is not None:
                    segments.append((len(data), seg))
                    data += seg.data
                    masses += seg.masses
                    kinds += seg.kinds
                    rows += seg.rows
                    images += seg.images
                    citations = citations or seg.citations
                    continue
            if type(message) is not dict and not isinstance(message, Mapping):
                continue
            start, images_before, citations_before, marks_before = len(data), images, citations, len(marks)
            citations = False
            role = str(message.get("role"))
            head = heads.get(role) or canonical_json({"role": role, "message": True})
            content = message.get("content")
            if type(content) is str or isinstance(content, str):
                why: str | None = None if content.strip() else "empty text blocks cannot carry cache_control"
                add_data(head + _string_bytes(content))
                add_mass(_string_mass(content))
                add_kind("text")
                add_row(("messages", "text", m, None, role, why, True, False, True))
            elif isinstance(content, list | tuple):
                entries = _read_content(content)
                n = len(entries)
                j = 0
                while j < n:
                    entry = entries[j]
                    kind = entry[3]
                    if kind in run_types and ((collapse_runs and j + 1 < n) or not collapse_runs):
                        end = j + 1
                        if collapse_runs:
                            while end < n and entries[end][3] == kind:
                                end += 1
                        for k in range(j, end):  # markers first: they name the position about to be added
                            if entries[k][7]:
                                special(m, k, entries[k], content[k])
                        chunk = b"".join([e[0] for e in entries[j:end]])
                        add_data(head + chunk if j == 0 else chunk)
                        add_mass(sum([e[1] for e in entries[j:end]]))
                        entry = entries[end - 1]  # the run's last block carries its marker
                        inside = not collapse_runs and end < n and entries[end][3] == kind
                        add_row(("messages", kind, m, end - 1, role, entry[2], end == n, inside, False))
                        add_kind(kind)
                        j = end
                        continue
                    if entry[7]:
                        special(m, j, entry, content[j])
                    add_data(head + entry[0] if j == 0 else entry[0])
                    add_mass(entry[1])
                    j += 1
                    add_row(("messages", kind, m, j - 1, role, entry[2], j == n, False, False))
                    add_kind(kind)
            elif content is not None:
                images += _images(content)
            if key is not None and len(marks) == marks_before:
                seg = _Segment(
                    key,
                    tuple(data[start:]),
                    tuple(masses[start:]),
                    tuple(kinds[start:]),
                    tuple(rows[start:]),
                    images - images_before,
                    citations,
                )
                if len(memo) >= _MESSAGES_MAX:
                    memo.clear()
                memo[key] = seg
                segments.append((start, seg))
            citations = citations or citations_before
        self.segments = segments
        self.data = data
        self.masses = masses
        self.kinds = kinds
        self.markable = [row[5] is None for row in rows]
        self.rows = rows
        self.marks = marks
        self.citations = citations
        self.images = images


def _other_block(value: Any) -> _Entry:
    """The entry of a content item that is not a ``dict``: another mapping, or not an object."""
    return _entry(value) if isinstance(value, Mapping) else _not_a_block(value)


_UNKNOWN_ENTRY = _entry({"type": "?"}, False)


#: One position before it is a :class:`Position`: level, kind, message, block, role, why_not,
#: message_end, inside_run, and whether its path is a string content or system (no block index).
_Row = tuple[Level, str, int | None, int | None, str | None, str | None, bool, bool, bool]

_sha256 = hashlib.sha256


class Prompt:
    """A request read as cache positions. Never mutates the body it reads.

    One pass over the body hashes every prefix; :class:`Position` objects are made when asked
    for (:meth:`position`, :attr:`positions`). The per-position sequences :attr:`hashes`,
    :attr:`kinds`, :attr:`levels` and :attr:`markable` serve the loops over every position.
    """

    __slots__ = (
        "_all",
        "_cum_bytes",
        "_cum_text",
        "_last_markable",
        "_made",
        "_plannable",
        "_rows",
        "auto",
        "body",
        "family",
        "hashes",
        "kinds",
        "level_ends",
        "markable",
        "markers",
        "model",
    )

    def __init__(self, body: Mapping[str, Any], *, collapse_runs: bool = True) -> None:
        if not isinstance(body, Mapping):
            raise TypeError(f"a Messages request body is a dict, got {type(body).__name__}")
        self.body = body
        self.model = str(body.get("model") or "")
        auto = body.get("cache_control")
        self.auto: Ttl | None = _ttl_of(auto) if isinstance(auto, Mapping) else None
        rows: list[_Row] = []
        hashes: list[str] = []
        kinds: list[str] = []
        markable: list[bool] = []
        markers: list[Marker] = []
        state = _seed(self.model)
        sizes: list[int] = []
        masses: list[int] = []
        sha = _sha256

        def add(
            level: Level, kind: str, data: bytes, mass: int, why_not: str | None, string: bool, kept: bool
        ) -> None:
            """A tools or system position (messages are hashed in one loop after the system).

            ``kept``: ``data`` is a memo's (a long system text's, or a block's entry): the same bytes
            object on every call, so a long one's step from the same state is kept, not hashed again.
            """
            nonlocal state
            kept_step = kept and _STEP_MIN_BYTES <= len(data) <= _STEP_MAX_BYTES
            state = _long_step(state, data) if kept_step else sha(state + data).digest()
            sizes.append(len(data))
            masses.append(mass)
            hashes.append(state.hex())
            kinds.append(kind)
            markable.append(why_not is None)
            rows.append((level, kind, None, None, None, why_not, False, False, string))

        def mark(path: str, value: Any, nested: bool = False) -> None:
            if isinstance(value, Mapping):
                markers.append(Marker(path, len(hashes), _ttl_of(value), nested))

        level_ends: dict[Level, int] = {}
        for i, tool in enumerate(body.get("tools") or []):
            kept = type(tool) is dict
            if kept:
                entry = _read_block(tool)
                data, mass = entry[0], entry[1]
                if entry[6]:  # it may hold a marker
                    mark(f"tools.{i}", tool.get("cache_control"))
            else:
                if isinstance(tool, Mapping):
                    mark(f"tools.{i}", tool.get("cache_control"))
                data, mass = canonical_json(tool), _text_mass(tool)
            add("tools", "tool", data, mass, None, False, kept)
        if hashes:
            level_ends["tools"] = len(hashes) - 1

        # The messages are read first (the system's salt needs their citations): their bytes,
        # sizes and markers here, their hashes after the system's.
        messages = body.get("messages") or []
        read = _Messages(messages, collapse_runs)
        state = sha(state + b"\x00system\x00" + _salt_system(body, read.citations)).digest()
        system = body.get("system")
        start = len(hashes)
        if isinstance(system, str):
            if system:
                block = {"type": "text", "text": system}
                add(
                    "system",
                    "text",
                    _string_bytes(system),
                    _string_mass(system),
                    _block_markable(block),
                    True,
                    len(system) >= _STRING_MEMO_MIN_CHARS,
                )
        elif isinstance(system, list | tuple):
            for j, raw in enumerate(system):
                sblock: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {"type": "?", "value": raw}
                mark(f"system.{j}", sblock.get("cache_control"))
                kept = type(raw) is dict
                if kept:
                    data, mass, why_sys, *_ = _read_block(raw)
                    if raw.get("type") != "text":
                        why_sys = "system blocks must be text blocks"
                else:
                    data, mass, why_sys = canonical_json(sblock), _text_mass(sblock), _system_markable(raw)
                add("system", str(sblock.get("type")), data, mass, why_sys, False, kept)
        if len(hashes) > start:
            level_ends["system"] = len(hashes) - 1
        self.family = hashes[-1] if hashes else state.hex()

        base = len(hashes)
        for path, local, value, nested in read.marks:
            markers.append(Marker(path, base + local, _ttl_of(value), nested))
        kinds += read.kinds
        markable += read.markable
        rows += read.rows
        masses += read.masses
        state = sha(state + b"\x00messages\x00" + _salt_messages(body, read.images)).digest()
        append = hashes.append
        every = read.data
        i = 0
        for start, seg in read.segments:
            for data in every[i:start]:
                state = sha(state + data).digest()
                append(state.hex())
            i = start + len(seg.data)
            chained = seg.chain.get(state)
            if chained is not None:  # this message after this same history: its hashes are known
                hashes += chained[0]
                state = chained[1]
                continue
            before, first = state, len(hashes)
            for data in seg.data:
                state = sha(state + data).digest()
                append(state.hex())
            seg.chained(before, tuple(hashes[first:]), state)
        for data in every[i:]:
            state = sha(state + data).digest()
            append(state.hex())
        sizes += map(len, read.data)
        cum_b = list(itertools.accumulate(sizes))
        cum_t = list(itertools.accumulate(masses))
        if rows and rows[-1][0] == "messages":
            level_ends["messages"] = len(rows) - 1
        # Each marker was recorded just before its owning position was added, so its index is right.
        self.markers = tuple(markers)
        self.hashes: tuple[str, ...] = tuple(hashes)
        self.kinds: tuple[str, ...] = tuple(kinds)
        self.markable: tuple[bool, ...] = tuple(markable)
        self._rows = rows
        self._plannable = [ok and not row[7] for ok, row in zip(markable, rows, strict=True)]
        self._made: list[Position | None] = [None] * len(rows)
        self._all: tuple[Position, ...] | None = None
        self._cum_bytes = cum_b
        self._cum_text = cum_t
        self._last_markable: int | None = next(
            (i for i in range(len(markable) - 1, -1, -1) if markable[i]), None
        )
        self.level_ends = level_ends

    # -- positions ---------------------------------------------------------------------------

    def position(self, index: int) -> Position:
        """The position at ``index`` (made on first use)."""
        made = self._made[index]
        if made is None:
            row = self._rows[index]
            tools_end = self.level_ends.get("tools", -1)
            nbytes = self.nbytes(index)
            text_bytes = self._cum_text[index] - (self._cum_text[index - 1] if index else 0)
            # Everything the position is made of: an agent's next request repeats it (same prefix)
            key = (index, self.hashes[index], row, nbytes, text_bytes, tools_end)
            made = _POSITIONS.get(key)
            if made is not None:
                self._made[index] = made
                return made
            level, kind, message, block, role, why_not, end, inside, string = row
            if level == "messages":
                path = f"messages.{message}.content" + ("" if string else f".{block}")
            elif level == "system":
                path = "system" if string else f"system.{index - tools_end - 1}"
            else:
                path = f"tools.{index}"
            made = Position(
                index=index,
                level=level,
                path=path,
                kind=kind,
                message=message,
                block=block,
                role=role,
                markable=why_not is None,
                why_not=why_not,
                nbytes=nbytes,
                text_bytes=text_bytes,
                prefix_hash=self.hashes[index],
                message_end=end,
                inside_run=inside,
            )
            self._made[index] = made
            if len(_POSITIONS) >= _POSITIONS_MAX:
                _POSITIONS.clear()
            _POSITIONS[key] = made
        return made

    @property
    def positions(self) -> tuple[Position, ...]:
        """Every position, in prefix order."""
        every = self._all
        if every is None:
            every = self._all = tuple(self.position(i) for i in range(len(self._rows)))
        return every

    def plannable(self, index: int) -> bool:
        """:attr:`Position.plannable` of the position at ``index``, without making it."""
        return self._plannable[index]

    def level(self, index: int) -> Level:
        """The level (tools, system, messages) of the position at ``index``."""
        return self._rows[index][0]

    @property
    def levels(self) -> tuple[Level, ...]:
        return tuple(row[0] for row in self._rows)

    def markable_hashes(self) -> list[str]:
        """The prefix hashes of the markable positions, in prefix order."""
        return [h for h, ok in zip(self.hashes, self.markable, strict=True) if ok]

    # -- sizes -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._rows)

    def nbytes(self, index: int) -> int:
        """Canonical bytes of the position at ``index`` alone."""
        return self._cum_bytes[index] - (self._cum_bytes[index - 1] if index else 0)

    def cum_bytes(self, index: int) -> int:
        """Canonical bytes of the prefix ending at ``index`` (inclusive)."""
        return self._cum_bytes[index] if index >= 0 else 0

    def cum_text(self, index: int) -> int:
        """Non-whitespace text bytes of the prefix ending at ``index`` (inclusive)."""
        return self._cum_text[index] if index >= 0 else 0

    def prefix_hash(self, index: int) -> str:
        return self.hashes[index]

    def last_markable(self) -> int | None:
        return self._last_markable

    # -- the truncated request count_tokens sees ----------------------------------------------

    def truncated(self, index: int) -> tuple[dict[str, Any], bool]:
        """A valid request body ending at position ``index``, for ``count_tokens``.

        Returns ``(body, filler)``: ``filler`` is true when a placeholder user turn was
        appended (a tools/system prefix, a trailing assistant turn, or a dangling
        ``tool_use``); the caller subtracts a baseline for it. Markers are stripped,
        server tools (rejected by count_tokens, docs/api-notes.md §4.1) are left out, and a forced
        ``tool_choice`` (rejected on some models) is dropped: both only lower the count.
        """
        pos = self.position(index)
        body = self.body
        out: dict[str, Any] = {"model": self.model}
        tools = body.get("tools") or []
        if pos.level == "tools":
            tools = tools[: index + 1]
        kept = [strip_cache_control(t) for t in tools if isinstance(t, Mapping) and _countable_tool(t)]
        if kept:
            out["tools"] = kept
        if pos.level != "tools":
            system = body.get("system")
            if pos.level == "system" and isinstance(system, list | tuple):
                offset = self.level_ends.get("tools", -1) + 1
                system = system[: index - offset + 1]
            if system:
                out["system"] = strip_cache_control(system)
        for key in ("thinking", "output_config", "speed"):
            if body.get(key) is not None:
                out[key] = strip_cache_control(body[key])
        choice = body.get("tool_choice")
        if isinstance(choice, Mapping) and choice.get("type") in ("auto", "none") and kept:
            out["tool_choice"] = dict(choice)
        filler = True
        messages: list[Any] = []
        if pos.level == "messages" and pos.message is not None:
            source = body.get("messages") or []
            messages = [strip_cache_control(m) for m in source[: pos.message]]
            current = source[pos.message]
            content = current.get("content")
            cut = content if isinstance(content, str) else content[: (pos.block or 0) + 1]
            last = {"role": current.get("role"), "content": strip_cache_control(cut)}
            messages.append(last)
            if last["role"] == "user":
                filler = False
            else:
                dangling = [
                    b.get("id")
                    for b in (cut if isinstance(cut, list | tuple) else [])
                    if isinstance(b, Mapping) and b.get("type") == "tool_use"
                ]
                if dangling:
                    messages.append(
                        {
                            "role": "user",
                            "content": [
                                {"type": "tool_result", "tool_use_id": tid, "content": "."}
                                for tid in dangling
                            ],
                        }
                    )
                else:
                    messages.append(FILLER_MESSAGE)
        else:
            messages = [FILLER_MESSAGE]
        out["messages"] = messages
        return out, filler

    def baseline_body(self) -> dict[str, Any]:
        """The filler turn alone: its count is subtracted from filler-padded prefix counts."""
        return {"model": self.model, "messages": [FILLER_MESSAGE]}


FILLER_MESSAGE: dict[str, Any] = {"role": "user", "content": "."}

_SERVER_TOOL_PREFIXES = COUNT_TOKENS_REFUSED_TOOL_PREFIXES


def _countable_tool(tool: Mapping[str, Any]) -> bool:
    kind = str(tool.get("type") or "custom")
    return not kind.startswith(_SERVER_TOOL_PREFIXES)
