"""Public names imported on first use (PEP 562), for the packages that defer a heavy import.

``import cachewise`` loads no SQLAlchemy, pandas or planner core: each package lists the names it
defers and their module (``_LAZY``) and takes its module ``__getattr__`` and ``__dir__`` from
:func:`lazy_names`. A leaf: it imports nothing of cachewise.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(
    owner: str,
    names: Mapping[str, str],
    namespace: dict[str, Any],
    public: Iterable[str],
    *,
    anchor: str | None = None,
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module ``__getattr__`` for module ``owner`` that imports ``names[name]`` (a module of the
    package ``anchor``, by default ``owner`` itself) on first use and keeps the value in
    ``namespace``, and a ``__dir__`` that lists ``public`` too."""
    listed = tuple(public)
    package = anchor or owner

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {owner!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(listed))

    return __getattr__, __dir__
