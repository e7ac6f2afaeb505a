"""What ``cachewise proxy --budgets`` assembles, and the command itself serving health, metrics, refusals."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cachewise.budget.config import key_id
from cachewise.emulator import EmulatorServer
from cachewise.gateway.build import gateway_parts
from cachewise.ledger import Ledger

from .conftest import BODY

KEY = "sk-ant-build-test"

CONFIG = f"""
[[budgets]]
name = "build-key"
window = "day"
limit = "0.001"
api_key = "builder:{key_id(KEY)}"

[[budgets]]
name = "ci-only"
window = "run"
limit = "1"
"""


def test_gateway_parts_from_a_budget_file(tmp_path: Path, ledger: Ledger) -> None:
    config = tmp_path / "cachewise.toml"
    config.write_text(CONFIG, encoding="utf-8")
    parts = gateway_parts(ledger, config, metrics=True)
    assert parts.budgets is not None and parts.metrics is not None
    assert [b.name for b in parts.budgets.budgets] == ["build-key"]
    assert parts.sinks == [parts.metrics, parts.budgets]
    assert parts.admit == parts.budgets.admit
    assert parts.summary() == [
        "budgets enforced: build-key",
        "budgets not enforced here (no limit, or a run window): ci-only",
        "metrics at /metrics",
    ]
    bare = gateway_parts(ledger, None, metrics=False)
    assert bare.admit is None and bare.sinks == [] and bare.summary() == ["metrics off"]


@pytest.mark.slow
def test_the_proxy_command_serves_health_metrics_and_refusals(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    config = tmp_path / "cachewise.toml"
    config.write_text(CONFIG, encoding="utf-8")
    command = [sys.executable, "-m", "cachewise", "proxy", "--port", "0", "--no-plan"]
    command += ["--upstream", emulator.base_url, "--db", str(tmp_path / "l.sqlite"), "--budgets", str(config)]
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}  # the spool: under the test's folder
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    ) as proc:
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()
            found = re.search(r"http://[\d.]+:\d+", first)
            assert found, first
            base = found.group(0)
            assert proc.stdout.readline().strip() == "budgets enforced: build-key"
            assert httpx2.get(f"{base}/healthz").json()["status"] == "ok"
            headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
            refused = httpx2.post(f"{base}/v1/messages", json=BODY, headers=headers)
            assert refused.status_code == 429
            assert refused.json()["error"]["type"] == "rate_limit_error"
            assert "budget 'build-key'" in refused.json()["error"]["message"]
            passed = httpx2.post(
                f"{base}/v1/messages", json=BODY, headers={**headers, "x-api-key": "sk-other"}
            )
            assert passed.status_code == 200
            scraped = httpx2.get(f"{base}/metrics").text
            samples = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(scraped)
                for s in family.samples
            }
            assert (
                samples[("cachewise_budget_refusals_total", (("budget", "build-key"), ("reason", "limit")))]
                == 1
            )
            assert (
                samples[("cachewise_proxy_requests_total", (("route", "messages"), ("status", "200")))] == 1
            )
        finally:
            proc.terminate()
            proc.wait(20)
    assert len(emulator.emulator.bill()) == 1
