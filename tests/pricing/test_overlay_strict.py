"""Price overlays are validated strictly at every level, with one error naming file, field and value.

Every command that loads prices exits 2 with that message, and a wrapped call made with a broken
overlay in ``CACHEWISE_PRICE_TABLE`` is recorded with a ``cost_error``, never dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest
import yaml
from click.testing import CliRunner

import cachewise
from cachewise import PriceBook, PriceTableError
from cachewise.cli import cli
from cachewise.ledger import Ledger

PRICE = {"from": "2026-01-01", "input": "1", "cache_write_5m": "1.25", "cache_write_1h": "2",
         "cache_read": "0.1", "output": "5"}  # fmt: skip


def _new_model(**overrides: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": "claude-acme-1",
        "name": "Acme",
        "family": "sonnet",
        "source": "contract",
        "checked": "2026-11-22",
        "prices": [PRICE],
        "min_cache_tokens": [{"from": "2026-01-01", "tokens": 1024}],
    }
    entry.update(overrides)
    return entry


def _overlay(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "acme.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False)


# (label, overlay text, field path, value shown (or None), words of the problem)
CASES: list[tuple[str, str | bytes, str, str | None, str]] = [
    ("typo at top", _yaml({"version": "a", "modles": []}), "modles", "[]", "Extra inputs are not permitted"),
    ("currency", _yaml({"version": "a", "currency": "EUR"}), "currency", '"EUR"', "'USD'"),
    (
        "schema version",
        _yaml({"version": "a", "schema_version": 2}),
        "schema_version",
        "2",
        "Input should be 1",
    ),
    ("no version", _yaml({"models": []}), "version", None, "Field required"),
    ("not a mapping", "- 1\n- 2\n", "<root>", "[1, 2]", "a mapping"),
    (
        "models not a list",
        _yaml({"version": "a", "models": {"id": "x"}}),
        "models",
        '{"id": "x"}',
        "valid list",
    ),
    (
        "server_tools wrong type",
        _yaml({"version": "a", "server_tools": 5}),
        "server_tools",
        "5",
        "valid list",
    ),
    (
        "entry without id",
        _yaml({"version": "a", "models": [{"name": "x"}]}),
        "models[0].id",
        "null",
        "needs an id",
    ),
    (
        "listed twice",
        _yaml({"version": "a", "models": [{"id": "claude-sonnet-4-6"}, {"id": "claude-sonnet-4-6"}]}),
        "models[1](claude-sonnet-4-6).id",
        '"claude-sonnet-4-6"',
        "listed twice in this file (also models[0])",
    ),
    (
        "unknown key in an entry",
        _yaml({"version": "a", "models": [{"id": "claude-sonnet-4-6", "input_price": "2"}]}),
        "models[0](claude-sonnet-4-6).input_price",
        '"2"',
        "Extra inputs are not permitted",
    ),
    (
        "section of wrong type",
        _yaml({"version": "a", "models": [{"id": "claude-sonnet-4-6", "prices": 5}]}),
        "models[0](claude-sonnet-4-6).prices",
        "5",
        "valid list",
    ),
    (
        "impossible date",
        "version: a\nmodels:\n  - id: claude-sonnet-4-6\n    prices:\n"
        "      - {from: 2026-02-30, input: '1', cache_write_5m: '1', cache_write_1h: '1',\n"
        "         cache_read: '1', output: '1'}\n",
        "models[0](claude-sonnet-4-6).prices[0].from",
        '"2026-02-30"',
        "valid date",
    ),
    (
        "unknown key in a price",
        _yaml({"version": "a", "models": [_new_model(prices=[{**PRICE, "inptu": "1"}])]}),
        "models[0](claude-acme-1).prices[0].inptu",
        '"1"',
        "Extra inputs are not permitted",
    ),
    ("not UTF-8", b"version: caf\xe9\n", "<file>", None, "not UTF-8 text (byte 0xe9 at offset 12)"),
    ("broken YAML", "version: [unclosed\n", "<yaml>", None, "not valid YAML"),
]


@pytest.mark.parametrize(("label", "text", "field", "value", "problem"), CASES, ids=[c[0] for c in CASES])
def test_a_bad_overlay_is_one_price_table_error(
    tmp_path: Path, label: str, text: str | bytes, field: str, value: str | None, problem: str
) -> None:
    path = _overlay(tmp_path, text)
    with pytest.raises(PriceTableError) as info:
        PriceBook.load(path)
    error = info.value
    assert error.path == str(path)
    assert error.field == field
    assert error.value == value
    assert problem in error.problem
    shown = f"{field} is {value}" if value is not None else field
    assert str(error) == f"{path}: {shown}: {error.problem}"


def test_impossible_date_in_the_base_table_is_named(tmp_path: Path) -> None:
    table = tmp_path / "table.yaml"
    table.write_text(
        _yaml({"version": "t", "models": [_new_model()]}).replace(
            "checked: '2026-11-22'", "checked: 2026-13-01"
        )
    )
    with pytest.raises(PriceTableError) as info:
        PriceBook.load(base=table)
    assert info.value.field == "models[0](claude-acme-1).checked"
    assert info.value.value == '"2026-13-01"'


def test_a_model_listed_twice_in_the_base_table_is_refused(tmp_path: Path) -> None:
    table = tmp_path / "table.yaml"
    table.write_text(_yaml({"version": "t", "models": [_new_model(), _new_model()]}))
    with pytest.raises(PriceTableError, match=r"models\[1\]\(claude-acme-1\)\.id is .*listed twice"):
        PriceBook.load(base=table)


def test_a_good_overlay_still_loads_and_is_strictly_merged(tmp_path: Path) -> None:
    path = _overlay(tmp_path, _yaml({"version": "acme-1", "currency": "USD", "models": [_new_model()]}))
    book = PriceBook.load(path)
    assert book.knows("claude-acme-1")
    assert book.version.endswith("+acme-1")


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    return _overlay(tmp_path, _yaml({"version": "a", "currency": "EUR"}))


def _request(tmp_path: Path) -> Path:
    path = tmp_path / "request.json"
    path.write_text(
        json.dumps(
            {"model": "claude-sonnet-4-6", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
        )
    )
    return path


@pytest.mark.parametrize(
    "command",
    [
        ["prices"],
        ["prices", "--model", "claude-sonnet-4-6"],
        ["plan", "--offline", "{request}"],
        ["ledger", "--db", "{db}", "reprice", "--table", "{overlay}"],
        ["report", "--db", "{db}", "--model", "claude-sonnet-4-6"],
        [
            "budget",
            "check",
            "--db",
            "{db}",
            "--limit",
            "1",
            "--window",
            "day",
            "--model",
            "claude-sonnet-4-6",
        ],
    ],
    ids=["prices", "prices --model", "plan", "ledger reprice", "report --model", "budget check --model"],
)
def test_every_command_that_loads_prices_exits_2_naming_the_problem(
    tmp_path: Path, broken: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setenv("CACHEWISE_PRICE_TABLE", str(broken))
    Ledger(tmp_path / "ledger.sqlite").close()
    args = [
        a.format(request=_request(tmp_path), db=tmp_path / "ledger.sqlite", overlay=broken) for a in command
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert f"{broken}: currency is \"EUR\": Input should be 'USD'" in result.output
    assert "Traceback" not in result.output


def test_prices_with_a_broken_price_table_option_exits_2(tmp_path: Path, broken: Path) -> None:
    result = CliRunner().invoke(cli, ["prices", "--price-table", str(broken)])
    assert result.exit_code == 2
    assert "currency is" in result.output


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "ledger.sqlite") as opened:
        yield opened


@pytest.mark.parametrize("planner", [False, True], ids=["record only", "default planner"])
def test_wrapped_calls_with_a_broken_env_overlay_are_recorded_with_a_cost_error(
    broken: Path, monkeypatch: pytest.MonkeyPatch, ledger: Ledger, planner: bool
) -> None:
    monkeypatch.setenv("CACHEWISE_PRICE_TABLE", str(broken))
    usage = {"input_tokens": 10, "output_tokens": 2}

    def handler(request: httpx2.Request) -> httpx2.Response:
        body = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-6",
            "content": [{"type": "text", "text": "ok"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }
        return httpx2.Response(200, json=body, headers={"request-id": "req_overlay"})

    http = httpx2.Client(transport=httpx2.MockTransport(handler))
    with anthropic.Anthropic(
        api_key="k", base_url="http://api.test", http_client=http, max_retries=0
    ) as client:
        wrapped = cachewise.wrap(client, ledger=ledger, planner=planner)
        message = wrapped.messages.create(
            model="claude-sonnet-4-6", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
        assert message.content[0].type == "text"
    ledger.flush()
    (row,) = ledger.calls()
    assert row.cost is None
    assert row.cost_error is not None and "currency is" in row.cost_error and str(broken) in row.cost_error
    assert row.usage.input_tokens == 10


def test_a_base_table_section_of_the_wrong_type_is_named(tmp_path: Path) -> None:
    table = tmp_path / "table.yaml"
    table.write_text(_yaml({"version": "t", "models": {"a": 1}}))
    with pytest.raises(PriceTableError) as info:
        PriceBook.load(base=table)
    assert (info.value.field, info.value.value) == ("models", '{"a": 1}')
