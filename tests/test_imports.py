"""The send path stays light: ``import cachewise`` and a wrapped call (planned, recorded in a ledger)
load none of pandas, numpy, matplotlib, starlette, uvicorn, prometheus-client. They belong to the
analysis layer (reports, the CI budget check, notebooks) and to the servers (emulator, proxy, gateway)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("pandas", "numpy", "matplotlib", "starlette", "uvicorn", "prometheus_client")

#: What a bare ``import cachewise`` leaves out besides: the ledger's database layer (SQLAlchemy),
#: plain ``httpx`` with its command line (click, rich, pygments; the SDK uses ``httpx2``), and the
#: planner and token counter, until a ledger, a transport or a planner is made.
SEND_PATH_LATER = ("sqlalchemy", "httpx", "click", "rich", "pygments")
LATER_MODULES = (
    "cachewise.ledger.ledger",
    "cachewise.ledger.schema",
    "cachewise.ledger.types",
    "cachewise.budget",
    "cachewise.planner.core",
    "cachewise.tokens",
    "cachewise._httpstreams1",
)

LOADED = f"""
import json, sys
heavy = {HEAVY!r}
print(json.dumps(sorted(h for h in heavy if any(m == h or m.startswith(h + ".") for m in sys.modules))))
"""

# A wrapped call through the real SDK against a tiny loopback server (not the emulator: it is a
# starlette app), with the default planner and a SQLite ledger, then a flush.
WRAPPED_CALL = """
import json, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anthropic
import cachewise

REPLY = {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn", "stop_sequence": None,
    "usage": {"input_tokens": 3000, "output_tokens": 2, "cache_creation_input_tokens": 0,
              "cache_read_input_tokens": 0},
}

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["content-length"]))
        body = {"input_tokens": 3000} if "count_tokens" in self.path else REPLY
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("request-id", "req_imports_1")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
with cachewise.Ledger(LEDGER, spool_dir=SPOOL) as ledger:
    client = cachewise.wrap(
        anthropic.Anthropic(api_key="sk-test", base_url=f"http://127.0.0.1:{server.server_port}",
                            max_retries=0),
        ledger=ledger,
    )
    client.messages.create(model="claude-sonnet-4-5", max_tokens=5, system="manual " * 3000,
                           messages=[{"role": "user", "content": "hi"}])
    ledger.flush()
    assert ledger.totals().calls == 1, ledger.totals()
server.shutdown()
"""


def _loaded(code: str, tmp_path: Path, roots: tuple[str, ...] = HEAVY) -> list[str]:
    report = LOADED.replace(f"heavy = {HEAVY!r}", f"heavy = {roots!r}")
    done = subprocess.run(
        [sys.executable, "-c", code + report],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_import_cachewise_loads_no_analysis_or_server_library(tmp_path: Path) -> None:
    assert _loaded("import cachewise\n", tmp_path) == []


def test_a_wrapped_call_loads_no_analysis_or_server_library(tmp_path: Path) -> None:
    setup = f"LEDGER = {str(tmp_path / 'l.sqlite')!r}\nSPOOL = {str(tmp_path / 'spool')!r}\n"
    assert _loaded(setup + WRAPPED_CALL, tmp_path) == []


@pytest.mark.parametrize(
    "name", ["build_report", "load_frame", "render", "spend", "totals", "session_collector"]
)
def test_lazy_public_names_resolve(name: str) -> None:
    import cachewise

    assert callable(getattr(cachewise, name))
    assert name in dir(cachewise)


def test_import_cachewise_loads_no_database_layer_plain_httpx_or_planner(tmp_path: Path) -> None:
    assert _loaded("import cachewise\n", tmp_path, SEND_PATH_LATER + LATER_MODULES) == []


@pytest.mark.parametrize(
    ("code", "module"),
    [
        ("cachewise.Ledger", "sqlalchemy"),
        ("cachewise.ledger.Totals", "sqlalchemy"),
        ("cachewise.RuntimeBudget", "cachewise.budget.runtime"),
        ("cachewise.CachePlanner", "cachewise.planner.core"),
        ("cachewise.planner.CachePlanner", "cachewise.tokens"),
        ("cachewise.httpstreams.Frames1", "httpx"),
        ("cachewise.httpstreams.AsyncFrames1", "httpx"),
    ],
)
def test_what_is_left_out_loads_on_first_use(code: str, module: str, tmp_path: Path) -> None:
    use = f"import cachewise, cachewise.httpstreams, cachewise.integrations.streams\n{code}\n"
    assert _loaded(use, tmp_path, (module,)) == [module]


def test_lazy_package_names_are_the_real_ones() -> None:
    import httpx

    from cachewise import httpstreams, ledger, planner
    from cachewise.integrations import streams
    from cachewise.ledger.ledger import Ledger
    from cachewise.planner.core import CachePlanner

    assert ledger.Ledger is Ledger
    assert planner.CachePlanner is CachePlanner
    assert issubclass(httpstreams.Frames1, httpx.SyncByteStream)
    assert streams.AsyncFrames2 is httpstreams.AsyncFrames2
    for package in (ledger, planner, httpstreams, streams):
        assert set(package.__all__) <= set(dir(package))
        with pytest.raises(AttributeError, match="no attribute 'nope'"):
            _ = package.nope
