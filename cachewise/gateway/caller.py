"""Who is calling the gateway: the API key's id (never the key) and the tags the caller declares.

* The key is read from ``x-api-key`` (or ``authorization: Bearer ...``) and reduced to its id,
  :func:`cachewise.budget.config.key_id` (16 hex digits of its SHA-256); the key itself is not kept.
* ``x-cachewise-tags: feature=search,team=a`` declares tags for the call (the proxy strips the
  header before forwarding). A pair without ``=``, an empty key, or the reserved key tag is a
  :class:`TagHeaderError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..budget.config import KEY_TAG, key_id
from ..tags import MAX_KEY_LENGTH, MAX_VALUE_LENGTH

__all__ = ["CALLER_SCOPE_KEY", "TAGS_HEADER", "Caller", "TagHeaderError", "caller_of", "parse_tags_header"]

#: The request header a client declares its tags in (stripped before the request goes upstream).
TAGS_HEADER = "x-cachewise-tags"
#: Where the gateway app leaves the :class:`Caller` in the ASGI scope for the proxy's hooks.
CALLER_SCOPE_KEY = "cachewise.caller"


class TagHeaderError(ValueError):
    """The ``x-cachewise-tags`` header cannot be read (``.pair``: the part at fault)."""

    def __init__(self, pair: str, reason: str) -> None:
        self.pair = pair
        super().__init__(f"{TAGS_HEADER}: {pair!r}: {reason} (expected key=value,key=value)")


@dataclass(frozen=True, slots=True)
class Caller:
    """One request's caller: its key id (``None`` without a key) and its tags (the key tag included)."""

    key_id: str | None
    tags: Mapping[str, str] = field(default_factory=dict)


def parse_tags_header(value: str) -> dict[str, str]:
    """``"feature=search, team=a"`` -> ``{"feature": "search", "team": "a"}`` (spaces dropped)."""
    tags: dict[str, str] = {}
    for part in value.split(","):
        pair = part.strip()
        if not pair:
            continue
        key, sep, val = pair.partition("=")
        key, val = key.strip(), val.strip()
        if not sep or not key:
            raise TagHeaderError(pair, "not key=value")
        if key == KEY_TAG:
            raise TagHeaderError(pair, f"{KEY_TAG} is set by the gateway from the API key")
        if len(key) > MAX_KEY_LENGTH or len(val) > MAX_VALUE_LENGTH:
            raise TagHeaderError(pair, f"keys are at most {MAX_KEY_LENGTH}, values {MAX_VALUE_LENGTH} chars")
        tags[key] = val
    return tags


def _api_key(headers: Mapping[str, str]) -> str | None:
    key = headers.get("x-api-key")
    if key:
        return key
    auth = headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def caller_of(headers: Mapping[str, str]) -> Caller:
    """The caller of a request with ``headers`` (case-insensitive mapping, as starlette's)."""
    tags = parse_tags_header(headers.get(TAGS_HEADER, ""))
    key = _api_key(headers)
    ident = key_id(key) if key is not None else None
    if ident is not None:
        tags[KEY_TAG] = ident
    return Caller(key_id=ident, tags=tags)
