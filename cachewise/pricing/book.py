"""Load price tables, lay overlays over them, and look up what was in force when.

A :class:`PriceBook` is the shipped ``pricing/anthropic.yaml`` plus any user
overlays (``CACHEWISE_PRICE_TABLE``, or passed in). An overlay entry with an
existing ``id`` replaces the fields it names (negotiated prices, a corrected
minimum); an entry with a new ``id`` adds a model. Every lookup returns the
table version(s) it used, so a ledger can store them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import ModifierNotAvailable, NoPriceError, PriceTableError, UnknownModelError
from .platforms import Platform, platform_names
from .schema import (
    FastPeriod,
    LongContextTier,
    MinCachePeriod,
    ModelEntry,
    OverlayFile,
    PriceTable,
    Rates,
)

__all__ = ["AppliedRates", "MinCache", "PriceBook", "default_table_path", "read_table_file", "to_utc"]

ENV_OVERLAY = "CACHEWISE_PRICE_TABLE"
_ONE = Decimal(1)


def default_table_path() -> Path:
    """The shipped table: inside the wheel, or the repository's ``pricing/`` in a checkout."""
    packaged = resources.files("cachewise").joinpath("_data/pricing/anthropic.yaml")
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "pricing" / "anthropic.yaml"


def _portable_name(path: Path) -> str:
    """How applied rates name a table file: ``cachewise:anthropic.yaml`` if shipped, else its file name.

    Applied rates are stored with every ledger row, so they must not carry a path of the machine
    that priced the call (a home directory, a virtualenv); error messages keep the full path.
    """
    shipped = default_table_path()
    try:
        if path.resolve() == shipped.resolve():
            return f"cachewise:{shipped.name}"
    except OSError:  # an unreadable path still gets its name
        pass
    return path.name


def to_utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError(f"timestamp {at.isoformat()} has no timezone; pass an aware datetime (UTC)")
    return at.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class MinCache:
    """The minimum cacheable prompt length in force for a model on a date."""

    tokens: int
    uncertain: str | None
    since: date


@dataclass(frozen=True, slots=True)
class AppliedRates:
    """Effective USD-per-million-token rates for one request, with where they came from."""

    model: str
    table_version: str
    source: str
    period_from: date
    input: Decimal
    cache_write_5m: Decimal
    cache_write_1h: Decimal
    cache_read: Decimal
    output: Decimal
    web_search_per_1k: Decimal
    code_execution_per_hour: Decimal
    tier_above: int | None = None
    batch: bool = False
    fast: bool = False
    us_residency: bool = False
    regional: bool = False
    platform: str = "anthropic"
    multiplier: Decimal = _ONE
    uncertain: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


class _Loader(yaml.SafeLoader):
    """Safe YAML without implicit dates: ``2026-02-30`` stays text, so the schema reports it with its path."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_table_file(path: Path) -> Any:
    """The parsed YAML of a price file; :class:`PriceTableError` if it cannot be read or parsed."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PriceTableError(path, "<file>", f"cannot read: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PriceTableError(
            path, "<file>", f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from exc
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except (yaml.YAMLError, ValueError) as exc:
        raise PriceTableError(path, "<yaml>", f"not valid YAML: {exc}") from exc


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _validation_error(path: Path, exc: ValidationError, data: Any, prefix: str = "") -> PriceTableError:
    first = exc.errors()[0]
    loc = list(first["loc"])
    parts: list[str] = [prefix] if prefix else []
    node: Any = data
    for item in loc:
        if isinstance(item, int):
            label = ""
            if isinstance(node, list) and 0 <= item < len(node) and isinstance(node[item], Mapping):
                ident = node[item].get("id")
                label = f"({ident})" if ident else ""
            parts[-1:] = [f"{parts[-1] if parts else ''}[{item}]{label}"]
        else:
            parts.append(str(item))
        try:
            node = node[item]
        except (KeyError, IndexError, TypeError):
            node = None
    value = None if first["type"] == "missing" else _shown(first.get("input"))
    return PriceTableError(path, ".".join(parts) or "<root>", str(first["msg"]), value)


def _check_dates(path: Path, where: str, entries: Sequence[Any], *, ranged: bool) -> None:
    previous: date | None = None
    for index, entry in enumerate(entries):
        start: date = entry.from_
        until: date | None = getattr(entry, "until", None)
        if until is not None and until <= start:
            raise PriceTableError(path, f"{where}[{index}].until", f"{until} is not after from {start}")
        if previous is not None and start <= previous and not ranged:
            raise PriceTableError(
                path, f"{where}[{index}].from", f"{start} is not after the previous entry's {previous}"
            )
        previous = start
    if ranged:
        spans = sorted(((e.from_, e.until or date.max) for e in entries), key=lambda s: s[0])
        for (_, end), (start, _) in pairwise(spans):
            if start < end:
                raise PriceTableError(path, f"{where}", f"date ranges overlap at {start}")


def _check_model(path: Path, index: int, model: ModelEntry) -> None:
    where = f"models[{index}]({model.id})"
    _check_dates(path, f"{where}.prices", model.prices, ranged=False)
    _check_dates(path, f"{where}.min_cache_tokens", model.min_cache_tokens, ranged=False)
    _check_dates(path, f"{where}.long_context", model.long_context, ranged=True)
    _check_dates(path, f"{where}.fast", model.fast, ranged=True)
    _check_dates(path, f"{where}.batch", model.batch, ranged=True)
    _check_dates(path, f"{where}.us_residency", model.us_residency, ranged=True)
    _check_dates(path, f"{where}.regional", model.regional, ranged=True)
    if not model.min_cache_tokens:
        raise PriceTableError(path, f"{where}.min_cache_tokens", "every model needs a minimum length")


def _read_overlay(path: Path) -> OverlayFile:
    data = read_table_file(path)
    if not isinstance(data, Mapping):
        raise PriceTableError(
            path, "<root>", "an overlay is a mapping with 'version' and 'models'", _shown(data)
        )
    try:
        return OverlayFile.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(path, exc, data) from exc


def _merge_overlay(
    base: dict[str, dict[str, Any]], overlay: OverlayFile, path: Path, origin: dict[str, str]
) -> None:
    """Lay the overlay's entries over ``base``, checking each one where it was written."""
    seen: dict[str, int] = {}
    for index, entry in enumerate(overlay.models):
        model_id = entry.get("id")
        if not isinstance(model_id, str) or not model_id:
            raise PriceTableError(
                path,
                f"models[{index}].id",
                "every overlay entry needs an id (a model name)",
                _shown(model_id),
            )
        where = f"models[{index}]({model_id})"
        if model_id in seen:
            raise PriceTableError(
                path,
                f"{where}.id",
                f"listed twice in this file (also models[{seen[model_id]}])",
                _shown(model_id),
            )
        seen[model_id] = index
        merged = {**base[model_id], **entry} if model_id in base else dict(entry)
        try:
            model = ModelEntry.model_validate(merged)
        except ValidationError as exc:
            raise _validation_error(path, exc, merged, where) from exc
        _check_model(path, index, model)
        base[model_id] = merged
        origin[model_id] = f"{path}: {where}"


@dataclass(frozen=True, slots=True)
class _Layer:
    path: Path
    version: str


_RatesKey = tuple[str, date, bool, bool, bool, bool, str]
_RATES_MAX = 4096  # (model, day, modifiers) answers kept per book; emptied when full


def _active(entries: Iterable[Any], day: date) -> Any | None:
    found = None
    for entry in entries:
        until = getattr(entry, "until", None)
        if entry.from_ <= day and (until is None or day < until):
            found = entry
    return found


class PriceBook:
    """The loaded price tables; look up models, minimums and rates by UTC time."""

    def __init__(self, table: PriceTable, layers: Sequence[_Layer]) -> None:
        self.table = table
        self._layers = tuple(layers)
        self.version = "+".join(layer.version for layer in layers)
        self.source = ", ".join(str(layer.path) for layer in layers)
        self.label = ", ".join(_portable_name(layer.path) for layer in layers)
        self._models: dict[str, ModelEntry] = {}
        # rates() answered: (model, UTC day, modifiers) → the token thresholds that choose a tier that
        # day, and the rates by which of them the request is above (a ledger prices every call)
        self._rates: dict[_RatesKey, tuple[tuple[int, ...], dict[tuple[bool, ...], AppliedRates]]] = {}
        for model in table.models:
            for name in (model.id, *model.aliases, *model.bedrock_ids, *model.vertex_ids):
                self._models.setdefault(name, model)

    # -- loading -----------------------------------------------------------------------------

    @classmethod
    def load(cls, *overlays: str | Path, base: str | Path | None = None) -> PriceBook:
        """Load the shipped table (or ``base``), then each overlay in order.

        Every file is checked strictly (unknown keys, schema version, currency, types, dates, a
        model listed twice); the first problem raises :class:`PriceTableError` naming the file,
        the field path and the value.
        """
        base_path = Path(base) if base is not None else default_table_path()
        raw = read_table_file(base_path)
        if not isinstance(raw, Mapping):
            raise PriceTableError(
                base_path, "<root>", "expected a mapping with 'version' and 'models'", _shown(raw)
            )
        cls._validate(base_path, raw)  # from here on, models is a list of valid entries
        first: dict[str, int] = {}
        for index, entry in enumerate(raw.get("models") or []):
            model_id = str(entry["id"])
            if model_id in first:
                raise PriceTableError(
                    base_path,
                    f"models[{index}]({model_id}).id",
                    f"listed twice in this file (also models[{first[model_id]}])",
                    _shown(model_id),
                )
            first[model_id] = index
        layers = [_Layer(base_path, str(raw.get("version")))]
        models: dict[str, dict[str, Any]] = {str(e["id"]): dict(e) for e in raw.get("models") or []}
        origin: dict[str, str] = {}
        server_tools: list[Any] = list(raw.get("server_tools") or [])
        for overlay in overlays:
            path = Path(overlay)
            data = _read_overlay(path)
            _merge_overlay(models, data, path, origin)
            if data.server_tools:
                server_tools = [tool.model_dump(by_alias=True) for tool in data.server_tools]
            layers.append(_Layer(path, data.version))
        merged = dict(raw)
        merged["models"] = list(models.values())
        merged["server_tools"] = server_tools
        table = cls._validate(layers[-1].path if overlays else base_path, merged, origin)
        return cls(table, layers)

    @staticmethod
    def _validate(path: Path, data: Mapping[str, Any], origin: Mapping[str, str] | None = None) -> PriceTable:
        try:
            table = PriceTable.model_validate(data)
        except ValidationError as exc:
            raise _validation_error(path, exc, data) from exc
        seen: dict[str, str] = {}
        for index, model in enumerate(table.models):
            _check_model(path, index, model)
            for name in (model.id, *model.aliases, *model.bedrock_ids, *model.vertex_ids):
                if seen.get(name, model.id) != model.id:
                    where = (origin or {}).get(model.id)
                    raise PriceTableError(
                        path,
                        f"models[{index}]({model.id})",
                        f"name {name!r} is also used by {seen[name]}"
                        + (f" (set in {where})" if where else ""),
                        _shown(name),
                    )
                seen[name] = model.id
        _check_dates(path, "server_tools", table.server_tools, ranged=False)
        return table

    @classmethod
    def default(cls) -> PriceBook:
        """The shipped table plus the overlay named by ``CACHEWISE_PRICE_TABLE``, if set (cached).

        A broken file raises :class:`PriceTableError` (each time, without re-reading it).
        """
        found = _default_book(os.environ.get(ENV_OVERLAY) or None)
        if isinstance(found, PriceTableError):
            raise PriceTableError(found.path, found.field, found.problem, found.value) from found
        return found

    # -- models ------------------------------------------------------------------------------

    def models(self) -> list[ModelEntry]:
        return list(self.table.models)

    def knows(self, model: str) -> bool:
        return self._find(model) is not None

    def _find(self, model: str) -> ModelEntry | None:
        found = self._models.get(model)
        if found is None:
            for name in platform_names(model):
                found = self._models.get(name)
                if found is not None:
                    break
        return found

    def resolve(self, model: str) -> ModelEntry:
        """The entry for an API id, alias, Bedrock or Vertex name; :class:`UnknownModelError` if none."""
        found = self._find(model)
        if found is None:
            raise UnknownModelError(model, [str(layer.path) for layer in self._layers])
        return found

    def resolve_model(self, name: str) -> frozenset[str]:
        """Every name the model called ``name`` is stored under: its id, aliases, Bedrock and Vertex names.

        ``claude-sonnet-4-5`` and ``claude-sonnet-4-5-20250929`` give the same set, so a filter
        written either way matches calls recorded under either. :class:`UnknownModelError` if
        no loaded table knows the name.
        """
        entry = self.resolve(name)
        names = {entry.id, *entry.aliases, *entry.bedrock_ids, *entry.vertex_ids}
        names |= {f"anthropic.{n}" for n in entry.bedrock_ids if not n.startswith("anthropic.")}
        return frozenset(names)

    def resolve_models(self, names: Iterable[str]) -> frozenset[str]:
        """Every stored name of every model in ``names`` (a budget scope, a report or reprice filter).

        :class:`UnknownModelError` names the first that no loaded table knows: a scope that
        names no known model is a mistake, not a filter that quietly matches nothing.
        """
        found: set[str] = set()
        for name in names:
            found |= self.resolve_model(name)
        return frozenset(found)

    def fast_mode_ended(self, model: str, at: datetime) -> bool:
        """True when ``model`` had fast mode and every fast period ended on or before ``at``'s UTC date."""
        entry = self.resolve(model)
        if not entry.fast:
            return False
        day = to_utc(at).date()
        return all(period.until is not None and period.until <= day for period in entry.fast)

    def min_cache_tokens(self, model: str, at: datetime) -> MinCache:
        entry = self.resolve(model)
        day = to_utc(at).date()
        period: MinCachePeriod | None = _active(entry.min_cache_tokens, day)
        if period is None:
            # Before the first dated entry (a call before the model's docs listed it): use the earliest.
            period = entry.min_cache_tokens[0]
        return MinCache(tokens=period.tokens, uncertain=period.uncertain, since=period.from_)

    # -- rates -------------------------------------------------------------------------------

    def rates(
        self,
        model: str,
        at: datetime,
        *,
        prompt_tokens: int = 0,
        batch: bool = False,
        fast: bool = False,
        us_residency: bool = False,
        regional: bool = False,
        platform: Platform = "anthropic",
    ) -> AppliedRates:
        """Rates in force for ``model`` at ``at`` for a request with ``prompt_tokens`` of input.

        ``prompt_tokens`` (input + cache read + cache write) selects a long-context tier,
        which then applies to every component of the request. ``regional``: the call went to a
        regional or geographic Bedrock / Vertex AI endpoint; the model's ``regional`` premium
        applies when it has one on that date (models before Sonnet 4.5 have none: no premium).
        """
        if at.tzinfo is None:
            self.resolve(model)  # an unknown model is the error named first
        moment = to_utc(at)
        day = moment.date()
        key = (model, day, batch, fast, us_residency, regional, platform)
        known = self._rates.get(key)
        if known is None:
            if len(self._rates) >= _RATES_MAX:
                self._rates.clear()
            known = self._rates[key] = (self._thresholds(model, day, fast), {})
        thresholds, by_tier = known
        above = tuple([prompt_tokens > threshold for threshold in thresholds])
        found = by_tier.get(above)
        if found is None:  # a price that cannot be found raises every time: nothing is kept
            found = by_tier[above] = self._applied(
                model,
                moment,
                prompt_tokens=prompt_tokens,
                batch=batch,
                fast=fast,
                us_residency=us_residency,
                regional=regional,
                platform=platform,
            )
        return found

    def _thresholds(self, model: str, day: date, fast: bool) -> tuple[int, ...]:
        """The prompt sizes that choose among ``model``'s rates on ``day`` (:meth:`_applied` compares)."""
        entry = self.resolve(model)
        tier: LongContextTier | None = _active(entry.long_context, day)
        found = [tier.above] if tier is not None else []
        speed: FastPeriod | None = _active(entry.fast, day) if fast else None
        if speed is not None:
            found += [fast_tier.above for fast_tier in speed.tiers]
        return tuple(found)

    def _applied(
        self,
        model: str,
        moment: datetime,
        *,
        prompt_tokens: int,
        batch: bool,
        fast: bool,
        us_residency: bool,
        regional: bool,
        platform: Platform,
    ) -> AppliedRates:
        """:meth:`rates`, worked out from the table."""
        entry = self.resolve(model)
        day = moment.date()
        base = _active(entry.prices, day)
        if base is None:
            raise NoPriceError(entry.id, moment, self.source)
        uncertain: list[str] = [base.uncertain] if base.uncertain else []
        rates: Rates = base
        tier_above: int | None = None
        tier: LongContextTier | None = _active(entry.long_context, day)
        if tier is not None and prompt_tokens > tier.above:
            rates, tier_above = tier, tier.above
            if tier.uncertain:
                uncertain.append(tier.uncertain)
        values = {
            "input": rates.input,
            "cache_write_5m": rates.cache_write_5m,
            "cache_write_1h": rates.cache_write_1h,
            "cache_read": rates.cache_read,
            "output": rates.output,
        }
        if fast:
            if batch:
                raise ModifierNotAvailable(entry.id, "fast mode with batch", moment, self.source)
            speed: FastPeriod | None = _active(entry.fast, day)
            if speed is None:
                raise ModifierNotAvailable(entry.id, "fast mode", moment, self.source)
            fast_in, fast_out = speed.input, speed.output
            for fast_tier in speed.tiers:
                if prompt_tokens > fast_tier.above:
                    fast_in, fast_out, tier_above = fast_tier.input, fast_tier.output, fast_tier.above
            # Cache multipliers apply on top of the fast input price (docs/api-notes.md §6.1).
            ratio = fast_in / rates.input if rates.input else Decimal(0)
            for key in ("cache_write_5m", "cache_write_1h", "cache_read"):
                values[key] = values[key] * ratio
            values["input"], values["output"] = fast_in, fast_out
            if speed.uncertain:
                uncertain.append(speed.uncertain)
        multiplier = _ONE
        for wanted, periods, label in (
            (batch, entry.batch, "batch"),
            (us_residency, entry.us_residency, "inference_geo 'us'"),
        ):
            if not wanted:
                continue
            found = _active(periods, day)
            if found is None:
                raise ModifierNotAvailable(entry.id, label, moment, self.source)
            multiplier *= found.multiplier
            if found.uncertain:
                uncertain.append(found.uncertain)
        premium: Any = _active(entry.regional, day) if regional else None
        if premium is not None:  # no premium on that date: the endpoint costs the same as the global one
            multiplier *= premium.multiplier
            if premium.uncertain:
                uncertain.append(premium.uncertain)
        tools = _active(self.table.server_tools, day)
        return AppliedRates(
            model=entry.id,
            table_version=self.version,
            source=self.label,
            period_from=base.from_,
            input=values["input"] * multiplier,
            cache_write_5m=values["cache_write_5m"] * multiplier,
            cache_write_1h=values["cache_write_1h"] * multiplier,
            cache_read=values["cache_read"] * multiplier,
            output=values["output"] * multiplier,
            web_search_per_1k=tools.web_search_per_1k if tools else Decimal(0),
            code_execution_per_hour=tools.code_execution_per_hour if tools else Decimal(0),
            tier_above=tier_above,
            batch=batch,
            fast=fast,
            us_residency=us_residency,
            regional=premium is not None,
            platform=platform,
            multiplier=multiplier,
            uncertain=tuple(uncertain),
        )


@cache
def _default_book(overlay: str | None) -> PriceBook | PriceTableError:
    try:
        return PriceBook.load(*([overlay] if overlay else []))
    except PriceTableError as exc:  # remembered too: a broken overlay is not re-read on every call
        return exc
