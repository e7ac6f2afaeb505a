"""``cachewise reconcile`` against an emulator on a socket: the table, --json, --max-gap and its
exit codes, a refused key; the ledger is never written."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from cachewise.cli import cli
from cachewise.emulator import EmulatorServer
from cachewise.ledger import Ledger
from tests.fixtures.reconcile_org import ADMIN, Org, build


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Org:
    return build(tmp_path_factory.mktemp("org"))


@pytest.fixture(scope="module")
def server(org: Org) -> Iterator[EmulatorServer]:
    with EmulatorServer(org.emu) as running:
        yield running


def _run(org: Org, server: EmulatorServer, *extra: str, key: str = ADMIN) -> tuple[int, str, str]:
    args = ["reconcile", "--db", str(org.ledger_path), "--base-url", server.base_url]
    args += ["--since", org.since.isoformat(), "--until", org.until.isoformat(), *extra]
    before = hashlib.sha256(org.ledger_path.read_bytes()).hexdigest()
    done = CliRunner().invoke(cli, args, env={"ANTHROPIC_ADMIN_API_KEY": key})
    assert hashlib.sha256(org.ledger_path.read_bytes()).hexdigest() == before
    return done.exit_code, done.stdout, done.stderr


def test_the_table_lists_each_gap_with_its_kind_and_explanation(org: Org, server: EmulatorServer) -> None:
    code, out, _ = _run(org, server)
    assert code == 0
    for kind in ("bypassed", "priced_differently", "missing_in_ledger", "missing_in_report"):
        assert kind in out
        assert f"{kind}: " in out  # its explanation line
    assert "2026-11-22 00:00" in out and "claude-sonnet-4-6" in out
    assert "% of the report's cost" in out


def test_json_and_the_max_gap_exit_code(org: Org, server: EmulatorServer) -> None:
    code, out, _ = _run(org, server, "--json", "--limit", "2")
    assert code == 0
    data = json.loads(out)
    assert data["gaps_by_kind"] == {
        "bypassed": 1, "priced_differently": 1, "missing_in_ledger": 1, "missing_in_report": 1
    }  # fmt: skip
    ratio = float(data["gap_ratio"])
    code, _, err = _run(org, server, "--max-gap", f"{ratio * 100 / 2:.4f}%")
    assert code == 1 and "over --max-gap" in err
    code, _, _ = _run(org, server, "--max-gap", f"{ratio * 2:.6f}")
    assert code == 0


def test_a_clean_ledger_reports_zero_gap(tmp_path: Path) -> None:
    clean = build(tmp_path, gaps=())
    with EmulatorServer(clean.emu) as running:
        code, out, _ = _run(clean, running, "--max-gap", "0")
    assert code == 0
    assert "zero gap" in out


def test_a_regular_key_exits_2_naming_the_endpoint(org: Org, server: EmulatorServer) -> None:
    code, _, err = _run(org, server, key="sk-ant-api03-regular")
    assert code == 2
    assert err.startswith(
        "Error: /v1/organizations/usage_report/messages page 1: HTTP 401 authentication_error"
    )


def test_bad_options_exit_2(org: Org, server: EmulatorServer) -> None:
    code, _, err = _run(org, server, "--max-gap", "lots")
    assert code == 2 and "--max-gap" in err
    done = CliRunner().invoke(cli, ["reconcile", "--help"])
    assert done.exit_code == 0 and "Admin API" in done.stdout


def test_an_old_ledger_is_not_upgraded_by_reconciliation(tmp_path: Path, server: EmulatorServer) -> None:
    import sqlite3

    old = tmp_path / "old.db"
    Ledger(old, spool_dir=tmp_path / "spool", flush_on_signal=False).close()
    with sqlite3.connect(old) as conn:  # pretend the last step was never applied
        conn.execute("DELETE FROM cachewise_migrations WHERE id = (SELECT MAX(id) FROM cachewise_migrations)")
    org = Org(server.emulator, old, datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC))
    code, _, err = _run(org, server)
    assert code == 2 and "cachewise ledger upgrade" in err


def test_the_analytics_source_finds_the_same_gaps_over_a_socket(org: Org, server: EmulatorServer) -> None:
    code, out, _ = _run(org, server, "--json", "--limit", "2")
    legacy = json.loads(out)
    code, out, _ = _run(org, server, "--json", "--source", "analytics", "--limit", "1")
    assert code == 0
    data = json.loads(out)
    assert data["source"] == "analytics" and legacy["source"] == "usage_report"
    assert data["gaps"] == legacy["gaps"] and data["gap_ratio"] == legacy["gap_ratio"]
    code, out, _ = _run(org, server, "--source", "auto")
    assert code == 0 and "(analytics)" in out.splitlines()[0]
    code, out, _ = _run(org, server, "--source", "analytics", "--bucket-width", "1h")
    assert code == 0 and "% of the report's cost" in out  # hourly costs: the analytics API has them


def test_a_regular_key_on_the_analytics_source_names_its_endpoint(org: Org, server: EmulatorServer) -> None:
    code, _, err = _run(org, server, "--source", "analytics", key="sk-ant-api03-regular")
    assert code == 2
    assert err.startswith("Error: /v1/organizations/analytics/usage page 1: HTTP 401 authentication_error")
