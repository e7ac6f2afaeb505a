"""Tags for attributing calls: ``with cachewise.tags(feature="search", user="u1"): ...``.

Tags live in a :mod:`contextvars` variable, so they follow the code that set them:

* Nested scopes merge; on a key set twice the inner scope wins; a value of ``None``
  removes the key inside the scope. Leaving a scope restores the outer tags exactly.
* **asyncio**: a task copies the context when it is created, so a task created inside
  a ``tags(...)`` block carries those tags, and tags set inside a task never leak out.
* **threads**: a new :class:`threading.Thread` starts with an *empty* context and does
  not inherit the tags of the thread that started it (Python's rule, not ours). Wrap
  the target with :meth:`tags.bind` to carry them over, e.g.
  ``Thread(target=tags.bind(work))`` or ``pool.submit(tags.bind(work), item)``.

A :class:`~cachewise.ledger.CallRecord` captures :meth:`tags.current` when it is built.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from types import MappingProxyType, TracebackType
from typing import ParamSpec, TypeVar

__all__ = ["TagValue", "current", "tags"]

P = ParamSpec("P")
R = TypeVar("R")

TagValue = str | int | float | bool | None

MAX_KEY_LENGTH = 128
MAX_VALUE_LENGTH = 1024

_EMPTY: Mapping[str, str] = MappingProxyType({})
_TAGS: ContextVar[Mapping[str, str]] = ContextVar("cachewise_tags", default=_EMPTY)


def _normalise(values: Mapping[str, TagValue]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for key, value in values.items():
        if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
            raise ValueError(
                f"tag key {key!r}: expected a non-empty string of at most {MAX_KEY_LENGTH} chars"
            )
        if value is None:
            out[key] = None
            continue
        if not isinstance(value, str | int | float | bool):
            raise TypeError(
                f"tag {key}={value!r}: values are str, int, float or bool, not {type(value).__name__}"
            )
        text = value if isinstance(value, str) else str(value)
        if len(text) > MAX_VALUE_LENGTH:
            raise ValueError(f"tag {key}: value longer than {MAX_VALUE_LENGTH} chars")
        out[key] = text
    return out


def current() -> dict[str, str]:
    """The tags active here, as a new dict (changing it changes nothing)."""
    return dict(_TAGS.get())


class tags:
    """A scope of tags: a context manager (sync and async) and a decorator.

    ``tags(feature="search")`` merges over the tags already active; values are stored
    as strings (ints, floats and bools are converted), ``None`` removes a key.
    """

    __slots__ = ("_tokens", "_values")

    def __init__(self, mapping: Mapping[str, TagValue] | None = None, /, **values: TagValue) -> None:
        merged: dict[str, TagValue] = dict(mapping or {})
        merged.update(values)
        self._values = _normalise(merged)
        self._tokens: list[Token[Mapping[str, str]]] = []

    def __enter__(self) -> dict[str, str]:
        active = dict(_TAGS.get())
        for key, value in self._values.items():
            if value is None:
                active.pop(key, None)
            else:
                active[key] = value
        self._tokens.append(_TAGS.set(MappingProxyType(active)))
        return dict(active)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        _TAGS.reset(self._tokens.pop())

    async def __aenter__(self) -> dict[str, str]:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Use as a decorator: every call of ``fn`` runs inside this scope (sync functions only)."""
        values = dict(self._values)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with tags(values):
                return fn(*args, **kwargs)

        return wrapper

    current = staticmethod(current)

    @staticmethod
    def bind(fn: Callable[P, R]) -> Callable[P, R]:
        """Capture the tags active now; the returned callable runs ``fn`` under them, in any thread."""
        captured: dict[str, TagValue] = dict(_TAGS.get())

        @functools.wraps(fn)
        def bound(*args: P.args, **kwargs: P.kwargs) -> R:
            with tags(captured):
                return fn(*args, **kwargs)

        return bound
