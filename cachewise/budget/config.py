"""Budgets as configuration: ``[tool.cachewise.budget]`` / ``[[tool.cachewise.budgets]]`` in
``pyproject.toml``, or ``[budget]`` / ``[[budgets]]`` in ``cachewise.toml``.

Example (docs/budgets.md has every key)::

    [[tool.cachewise.budgets]]
    name = "eval-suite"
    window = "run"            # run | day | month
    limit = "2.00"            # USD; a string keeps it exact
    model = "claude-sonnet-4-5"
    tags = { feature = "search" }

    [[tool.cachewise.budgets]]
    name = "search-service"   # enforced by the gateway (`cachewise proxy --budgets`)
    window = "day"
    limit = "25"
    api_key = "search-svc:3f9a0c1e5b7d2a4f"   # a name and the key's id (KEY_TAG, key_id)

    [[tool.cachewise.budgets]]
    name = "vs-main"
    baseline = "cachewise-baseline.json"
    tolerance = "0.10"        # cost may rise 10% over the baseline

A wrong setting raises :class:`~cachewise.errors.BudgetConfigError` naming the file and key.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import BudgetConfigError

__all__ = [
    "CONFIG_FILES",
    "KEY_ID_LENGTH",
    "KEY_TAG",
    "BudgetSpec",
    "find_config",
    "key_id",
    "load_budgets",
    "parse_budgets",
    "read_config_text",
]

CONFIG_FILES = ("cachewise.toml", "pyproject.toml")

Window = Literal["run", "day", "month"]

#: The tag that carries a call's API key id (:func:`key_id`); the gateway sets it, never the key.
KEY_TAG = "api_key_sha256"
#: Hex digits of the key's SHA-256 kept as its id (64 bits: enough to tell a team's keys apart).
KEY_ID_LENGTH = 16
_KEY_REF = re.compile(r"^(?:(?P<name>[^:\s][^:]*):)?(?:sha256:)?(?P<hex>[0-9a-fA-F]{16,64})$")


def key_id(api_key: str) -> str:
    """The id of an API key: the first :data:`KEY_ID_LENGTH` hex digits of its SHA-256 (UTF-8).

    The same as ``printf %s "$ANTHROPIC_API_KEY" | sha256sum | cut -c1-16`` in a shell.
    """
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:KEY_ID_LENGTH]


def _key_ref(value: Any) -> tuple[str | None, str]:
    """``"name:hex"``, ``"sha256:hex"`` or ``"hex"`` (16-64 hex digits of the SHA-256) -> (name, id)."""
    found = _KEY_REF.match(value) if isinstance(value, str) else None
    if found is None:
        raise ValueError(
            "api_key: expected 'NAME:HEX' or 'HEX', HEX being at least the first 16 hex digits of the "
            'key\'s SHA-256 (docs/budgets.md: printf %s "$KEY" | sha256sum | cut -c1-16); never the key'
        )
    name = found.group("name")
    return (None if name == "sha256" else name), found.group("hex").lower()[:KEY_ID_LENGTH]


class BudgetSpec(BaseModel):
    """One budget: a window, a scope, and the limits it enforces."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="budget", min_length=1)
    window: Window = "run"
    limit: Decimal | None = Field(default=None, ge=0, description="USD for the window and scope")
    model: str | list[str] | None = Field(default=None, description="model id(s) in scope; all if unset")
    tags: dict[str, str] = Field(default_factory=dict, description="tags a call must carry to be in scope")
    baseline: str | None = Field(default=None, description="baseline JSON from `cachewise budget baseline`")
    tolerance: Decimal = Field(default=Decimal("0.10"), ge=0, description="allowed cost rise over baseline")
    min_hit_ratio: float | None = Field(default=None, ge=0, le=1)
    max_waste_ratio: float | None = Field(default=None, ge=0, le=1)
    hit_ratio_tolerance: float = Field(default=0.05, ge=0, le=1)
    waste_tolerance: float = Field(default=0.05, ge=0, le=1)
    test_tag: str = Field(default="test", min_length=1, description="tag naming the test of a call")
    api_key: str | None = Field(
        default=None,
        description="an API key in scope, by name and id ('NAME:HEX', HEX from key_id); never the key",
    )

    @model_validator(mode="before")
    @classmethod
    def _key_as_tag(cls, data: Any) -> Any:
        """``api_key`` scopes the budget to the calls tagged ``KEY_TAG=<id>`` (the gateway tags them)."""
        if not isinstance(data, Mapping) or data.get("api_key") is None:
            return data
        _, ident = _key_ref(data["api_key"])
        tags = data.get("tags") or {}
        if not isinstance(tags, Mapping):
            return data  # the field's own validation names the error
        if tags.get(KEY_TAG, ident) != ident:
            raise ValueError(f"tags.{KEY_TAG} and api_key name different keys")
        return {**data, "tags": {**tags, KEY_TAG: ident}}

    @model_validator(mode="after")
    def _something_to_check(self) -> BudgetSpec:
        if (
            self.limit is None
            and self.baseline is None
            and self.min_hit_ratio is None
            and self.max_waste_ratio is None
        ):
            raise ValueError("set at least one of limit, baseline, min_hit_ratio, max_waste_ratio")
        return self

    @property
    def models(self) -> list[str]:
        if self.model is None:
            return []
        return [self.model] if isinstance(self.model, str) else list(self.model)

    @property
    def key_id(self) -> str | None:
        """The id of the API key in scope (``api_key``), or ``None``."""
        return self.tags.get(KEY_TAG)

    @property
    def key_name(self) -> str | None:
        """The name ``api_key`` gives the key (``"NAME:HEX"``), else its id, else ``None``."""
        if self.api_key is None:
            return None
        name, ident = _key_ref(self.api_key)
        return name or ident

    def scope(self) -> str:
        parts = [f"model={'|'.join(self.models)}"] if self.models else []
        if self.api_key is not None:
            parts.append(f"key={self.key_name}")
        parts += [
            f"tag:{key}={value}"
            for key, value in sorted(self.tags.items())
            if not (key == KEY_TAG and self.api_key is not None)
        ]
        return ", ".join(parts) or "all calls"


def _key(prefix: str, loc: Sequence[int | str]) -> str:
    text = prefix
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _parse_one(path: Path, key: str, data: Any, default_name: str) -> BudgetSpec:
    if not isinstance(data, Mapping):
        raise BudgetConfigError(path, key, f"expected a table, got {type(data).__name__}")
    values = dict(data)
    values.setdefault("name", default_name)
    # TOML floats are binary; read money through str so "2.00" and 2.0 both stay exact-ish.
    for money in ("limit", "tolerance"):
        if isinstance(values.get(money), float | int) and not isinstance(values.get(money), bool):
            values[money] = Decimal(str(values[money]))
    try:
        return BudgetSpec.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        return _raise(path, _key(key, list(first["loc"])), message)


def _raise(path: Path, key: str, message: str) -> BudgetSpec:
    raise BudgetConfigError(path, key, message)


def parse_budgets(data: Mapping[str, Any], path: Path, prefix: str) -> list[BudgetSpec]:
    """Budgets from a parsed table (``prefix`` is where that table sits, for error messages)."""
    budgets: list[BudgetSpec] = []
    single = data.get("budget")
    if single is not None:
        budgets.append(_parse_one(path, f"{prefix}budget", single, "budget"))
    many = data.get("budgets")
    if many is not None:
        if not isinstance(many, list):
            raise BudgetConfigError(path, f"{prefix}budgets", "expected an array of tables ([[...budgets]])")
        for index, item in enumerate(many):
            budgets.append(_parse_one(path, f"{prefix}budgets[{index}]", item, f"budget-{index + 1}"))
    names = [budget.name for budget in budgets]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise BudgetConfigError(path, f"{prefix}budgets[{index}].name", f"duplicate budget name {name!r}")
    return budgets


def read_config_text(file: Path, what: str = "") -> str:
    """A budget config or baseline file's text; unreadable or not UTF-8 is a :class:`BudgetConfigError`."""
    try:
        return file.read_text(encoding="utf-8")
    except OSError as exc:
        raise BudgetConfigError(file, "<file>", f"cannot read{what}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise BudgetConfigError(file, "<file>", f"not UTF-8 text: {exc}") from exc


def load_budgets(path: str | Path) -> list[BudgetSpec]:
    """The budgets configured in ``path`` (a ``pyproject.toml`` or ``cachewise.toml``)."""
    file = Path(path)
    try:
        data = tomllib.loads(read_config_text(file))
    except tomllib.TOMLDecodeError as exc:
        raise BudgetConfigError(file, "<toml>", f"not valid TOML: {exc}") from exc
    if file.name == "pyproject.toml":
        section = data.get("tool", {}).get("cachewise", {})
        if not isinstance(section, Mapping):
            raise BudgetConfigError(file, "tool.cachewise", "expected a table")
        return parse_budgets(section, file, "tool.cachewise.")
    return parse_budgets(data, file, "")


def find_config(directory: str | Path = ".") -> Path | None:
    """``cachewise.toml``, else a ``pyproject.toml`` with budgets, in ``directory`` or a parent."""
    start = Path(directory).resolve()
    for folder in (start, *start.parents):
        for name in CONFIG_FILES:
            candidate = folder / name
            if not candidate.is_file():
                continue
            if name == "cachewise.toml":
                return candidate
            try:
                section = (
                    tomllib.loads(candidate.read_text(encoding="utf-8")).get("tool", {}).get("cachewise", {})
                )
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                return candidate  # let load_budgets report it
            if isinstance(section, Mapping) and ("budget" in section or "budgets" in section):
                return candidate
        if (folder / ".git").exists():
            break
    return None
