"""The shipped table loads, matches its schema, and bad tables fail with a named field."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from cachewise import PriceBook, PriceTableError, Usage, price
from cachewise.pricing.schema import json_schema

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 22, tzinfo=UTC)


def test_shipped_table_matches_committed_json_schema() -> None:
    committed = (ROOT / "pricing" / "schema.json").read_text()
    assert committed == json_schema(), "regenerate: python -m cachewise.pricing.schema > pricing/schema.json"
    Draft202012Validator(json.loads(committed)).validate(
        json.loads(json.dumps(yaml.safe_load((ROOT / "pricing" / "anthropic.yaml").read_text()), default=str))
    )


def test_every_model_has_source_checked_date_and_minimum() -> None:
    book = PriceBook.load()
    assert len(book.models()) >= 28
    for model in book.models():
        assert model.source and model.checked
        assert model.min_cache_tokens, model.id
    for name in (
        "claude-3-haiku-20240307",
        "claude-opus-5-5",
        "claude-sonnet-5-5",
        "claude-haiku-5-5",
        "claude-fable-5-2",
        "claude-mythos-5-2",
    ):
        assert book.knows(name), name


def test_minimums_follow_their_history() -> None:
    book = PriceBook.load()
    assert book.min_cache_tokens("claude-sonnet-4-6", datetime(2026, 3, 1, tzinfo=UTC)).tokens == 2048
    assert book.min_cache_tokens("claude-sonnet-4-6", datetime(2026, 6, 1, tzinfo=UTC)).tokens == 1024
    assert book.min_cache_tokens("claude-opus-4-7", datetime(2026, 5, 1, tzinfo=UTC)).tokens == 4096
    assert book.min_cache_tokens("claude-opus-4-7", datetime(2026, 6, 10, tzinfo=UTC)).tokens == 2048
    assert book.min_cache_tokens("claude-haiku-5-5", NOW).uncertain  # not published: flagged


def _write(tmp_path: Path, data: object, name: str = "table.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def _model(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "claude-test-1",
        "name": "Test",
        "family": "sonnet",
        "source": "test",
        "checked": "2026-11-22",
        "prices": [
            {
                "from": "2026-01-01",
                "input": "1",
                "cache_write_5m": "1.25",
                "cache_write_1h": "2",
                "cache_read": "0.1",
                "output": "5",
            },
        ],
        "min_cache_tokens": [{"from": "2026-01-01", "tokens": 1024}],
    }
    base.update(overrides)
    return base


@pytest.mark.parametrize(
    ("model", "field", "problem"),
    [
        (
            _model(
                prices=[
                    {
                        "from": "2026-01-01",
                        "input": "-1",
                        "cache_write_5m": "1",
                        "cache_write_1h": "2",
                        "cache_read": "0.1",
                        "output": "5",
                    }
                ]
            ),
            "models[0](claude-test-1).prices[0].input",
            "greater than or equal to 0",
        ),
        (
            _model(
                long_context=[
                    {
                        "from": "2026-01-01",
                        "input": "2",
                        "cache_write_5m": "2.5",
                        "cache_write_1h": "4",
                        "cache_read": "0.2",
                        "output": "10",
                    }
                ]
            ),
            "models[0](claude-test-1).long_context[0].above",
            "Field required",
        ),
        (
            _model(
                prices=[
                    {
                        "from": "2026-02-01",
                        "input": "1",
                        "cache_write_5m": "1.25",
                        "cache_write_1h": "2",
                        "cache_read": "0.1",
                        "output": "5",
                    },
                    {
                        "from": "2026-02-01",
                        "input": "2",
                        "cache_write_5m": "2.5",
                        "cache_write_1h": "4",
                        "cache_read": "0.2",
                        "output": "10",
                    },
                ]
            ),
            "models[0](claude-test-1).prices[1].from",
            "not after",
        ),
        (
            _model(
                batch=[
                    {"from": "2026-01-01", "until": "2026-06-01", "multiplier": "0.5"},
                    {"from": "2026-03-01", "multiplier": "0.5"},
                ]
            ),
            "models[0](claude-test-1).batch",
            "overlap",
        ),
    ],
)
def test_bad_tables_name_file_and_field(tmp_path: Path, model: object, field: str, problem: str) -> None:
    path = _write(tmp_path, {"version": "t1", "models": [model]})
    with pytest.raises(PriceTableError) as info:
        PriceBook.load(base=path)
    assert info.value.field == field
    assert problem in info.value.problem
    assert str(path) in str(info.value)


def test_duplicate_alias_is_contradictory(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {
            "version": "t1",
            "models": [
                _model(aliases=["shared"]),
                _model(id="claude-test-2", aliases=["shared"]),
            ],
        },
    )
    with pytest.raises(PriceTableError, match="'shared' is also used"):
        PriceBook.load(base=path)


def test_malformed_yaml(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("version: [unclosed\n")
    with pytest.raises(PriceTableError, match="not valid YAML"):
        PriceBook.load(base=path)


def test_overlay_overrides_prices_and_adds_models(tmp_path: Path) -> None:
    overlay = _write(
        tmp_path,
        {
            "version": "acme-2026-11",
            "models": [
                {
                    "id": "claude-haiku-4-5-20251001",
                    "prices": [
                        {
                            "from": "2025-10-15",
                            "input": "0.8",
                            "cache_write_5m": "1",
                            "cache_write_1h": "1.6",
                            "cache_read": "0.08",
                            "output": "4",
                        },
                    ],
                },
                _model(id="claude-internal-7"),
            ],
        },
        "overlay.yaml",
    )
    book = PriceBook.load(overlay)
    cost = price(book, Usage(input_tokens=1_000_000), "claude-haiku-4-5", NOW)
    assert cost.input == D("0.8")
    assert cost.rates.table_version == "2026-11-22+acme-2026-11"
    assert cost.rates.source == "cachewise:anthropic.yaml, overlay.yaml"
    assert str(tmp_path) not in cost.rates.source  # stored with every row: no path of this machine
    assert str(overlay) in book.source  # errors still name the full path
    assert price(book, Usage(output_tokens=1_000_000), "claude-internal-7", NOW).output == D("5")
    # the rest of the shipped table is untouched
    assert price(book, Usage(input_tokens=1_000_000), "claude-sonnet-4-6", NOW).input == D("3")


def test_overlay_without_version_is_refused(tmp_path: Path) -> None:
    overlay = _write(tmp_path, {"models": [_model()]}, "overlay.yaml")
    with pytest.raises(PriceTableError, match="version"):
        PriceBook.load(overlay)


def test_overlay_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    overlay = _write(tmp_path, {"version": "env-1", "models": [_model(id="claude-env-1")]}, "env.yaml")
    monkeypatch.setenv("CACHEWISE_PRICE_TABLE", str(overlay))
    assert PriceBook.default().knows("claude-env-1")
    monkeypatch.delenv("CACHEWISE_PRICE_TABLE")
    assert not PriceBook.default().knows("claude-env-1")
