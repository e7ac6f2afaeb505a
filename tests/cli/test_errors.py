"""Every command answers bad input with ``Error: ...`` and exit status 2, never a traceback.

The exit-code policy (README, "Exit codes"): 0 fine, 1 a finding (over budget, ``lint --strict``
warnings), 2 bad usage or input. The table below has bad inputs for every command in the
``cachewise --help`` tree, and a test fails when a command is added without one.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from cachewise.cli import cli
from cachewise.ledger import Ledger


def leaf_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from leaf_commands(command, (*prefix, name))
        else:
            yield (*prefix, name)


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Paths the bad inputs refer to: a real ledger, a file that is not one, a missing folder."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("CACHEWISE_DB", raising=False)
    ledger = tmp_path / "ledger.sqlite"
    Ledger(ledger, spool_dir=tmp_path / "spool").close()
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_text("not a database\n")
    request = tmp_path / "request.json"
    request.write_text('{"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": []}')
    deep = tmp_path / "deep.json"
    deep.write_text('{"a": ' * 100_000 + "1" + "}" * 100_000)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe")
    return {
        "ledger": str(ledger),
        "not_a_db": str(not_a_db),
        "folder": str(tmp_path),
        "missing": str(tmp_path / "nope.sqlite"),
        "in_missing_folder": str(tmp_path / "no" / "such" / "out.txt"),
        "request": str(request),
        "binary": str(binary),
        "deep": str(deep),
    }


# (command path, arguments with {placeholders} from ``files``, what the error must name)
BAD_INPUTS: list[tuple[tuple[str, ...], list[str], list[str]]] = [
    (("prices",), ["--at", "yesterday"], ["--at", "yesterday"]),
    (("prices",), ["--model", "claude-foo-9"], ["claude-foo-9"]),
    (("prices",), ["--price-table", "{folder}"], ["{folder}"]),
    (("plan",), ["{missing}", "--offline"], ["REQUEST", "{missing}"]),
    (("plan",), ["{request}", "--offline", "-o", "{in_missing_folder}"], ["--output", "{in_missing_folder}"]),
    (("plan",), ["{request}", "--base-url", "ftp://example"], ["--base-url", "ftp://example"]),
    (("plan",), ["{request}", "--offline", "--price-table", "{not_a_db}"], ["{not_a_db}"]),
    (("plan",), ["{request}", "--offline", "--price-table", "{missing}"], ["--price-table", "{missing}"]),
    (("lint",), ["{missing}"], ["REQUEST", "{missing}"]),
    (("lint",), ["{not_a_db}"], ["REQUEST", "{not_a_db}"]),
    (("lint",), ["{deep}"], ["REQUEST", "{deep}", "nested too deeply"]),
    (("emulate",), ["--port", "99999"], ["--port", "99999"]),
    (("emulate",), ["--port", "-1"], ["--port", "-1"]),
    (("emulate",), ["--batch-delay", "-1"], ["--batch-delay", "-1"]),
    (("emulate",), ["--start", "yesterday"], ["--start", "yesterday"]),
    (("proxy",), ["--port", "70000"], ["--port", "70000"]),
    (("proxy",), ["--db", "foo://bar", "--port", "0"], ["--db", "foo://bar"]),
    (("proxy",), ["--db", "{folder}", "--port", "0"], ["--db", "{folder}"]),
    (("proxy",), ["--upstream", "not a url", "--port", "0"], ["--upstream", "not a url"]),
    (("report",), ["--db", "foo://bar"], ["--db", "foo://bar"]),
    (("report",), ["--db", "postgresql://h:notaport/db"], ["--db", "postgresql://h:notaport/db"]),
    (("report",), ["--db", "{missing}"], ["--db", "{missing}"]),
    (("report",), ["--db", "{folder}"], ["--db", "{folder}"]),
    (("report",), ["--db", "{not_a_db}"], ["--db", "{not_a_db}"]),
    (
        ("report",),
        ["--db", "{ledger}", "--output", "{in_missing_folder}"],
        ["--output", "{in_missing_folder}"],
    ),
    (("report",), ["--db", "{ledger}", "--output", "{folder}"], ["--output", "{folder}"]),
    (("report",), ["--db", "{ledger}", "--since", "99999999d"], ["--since", "99999999d"]),
    (("report",), ["--db", "{ledger}", "--top", "-1"], ["--top", "-1"]),
    (("report",), ["--db", "{ledger}", "--calls", "-1"], ["--calls", "-1"]),
    (("report",), ["--db", "{ledger}", "--since", "2030-01-01", "--until", "2020-01-01"], ["--since"]),
    (("calls",), ["--db", "{missing}"], ["--db", "{missing}"]),
    (("calls",), ["--db", "{not_a_db}"], ["--db", "{not_a_db}"]),
    (("calls",), ["--db", "{ledger}", "-n", "0"], ["--count", "0"]),
    (("calls",), ["--db", "{ledger}", "--status", "fine"], ["--status", "fine"]),
    (("calls",), ["--db", "{ledger}", "--since", "yesterday"], ["--since", "yesterday"]),
    (("calls",), ["--db", "{ledger}", "--since", "2030-01-01", "--until", "2020-01-01"], ["--since"]),
    (("budget", "check"), ["--db", "{missing}", "--limit", "1", "--since", "1h"], ["--db", "{missing}"]),
    (("budget", "check"), ["--db", "{ledger}", "--limit", "-5", "--since", "1h"], ["--limit", "-5"]),
    (("budget", "check"), ["--db", "{ledger}", "--limit", "1", "--since", "9999999d"], ["--since"]),
    (("budget", "check"), ["--db", "{ledger}", "--config", "{binary}"], ["{binary}", "UTF-8"]),
    (
        ("budget", "check"),
        ["--db", "{ledger}", "--limit", "1", "--since", "1h", "--junit", "{in_missing_folder}"],
        ["--junit", "{in_missing_folder}"],
    ),
    (
        ("budget", "check"),
        ["--db", "{ledger}", "--limit", "1", "--since", "1h", "--json", "{in_missing_folder}"],
        ["--json", "{in_missing_folder}"],
    ),
    (
        ("budget", "baseline"),
        ["--db", "{ledger}", "--since", "1d", "--output", "{in_missing_folder}"],
        ["--output", "{in_missing_folder}"],
    ),
    (
        ("budget", "baseline"),
        ["--db", "foo://bar", "--since", "1d", "--output", "x.json"],
        ["--db", "foo://"],
    ),
    (
        ("budget", "baseline"),
        ["--db", "{ledger}", "--since", "2030-01-01", "--until", "2020-01-01", "-o", "x.json"],
        ["--since", "is after --until"],
    ),
    (("report",), ["--db", "{ledger}", "--json", "--format", "csv"], ["--json", "--format csv"]),
    (("report",), ["--db", "{ledger}", "--price-table", "{missing}"], ["--price-table", "{missing}"]),
    (("budget", "check"), ["--db", "{ledger}", "--limit", "1", "--price-table", "{folder}"], ["{folder}"]),
    (("ledger", "info"), ["--db", "{missing}"], ["--db", "{missing}"]),
    (("ledger", "info"), ["--db", "mysql://h/db"], ["--db", "mysql://h/db"]),
    (("ledger", "rollups", "check"), ["--db", "{missing}"], ["--db", "{missing}"]),
    (("ledger", "rollups", "rebuild"), ["--db", "mysql://h/db"], ["--db", "mysql://h/db"]),
    (("ledger", "upgrade"), ["--db", "{not_a_db}"], ["--db", "{not_a_db}"]),
    (("ledger", "replay"), ["--db", "{folder}"], ["--db", "{folder}"]),
    (("ledger", "path"), ["--db", "{folder}"], ["--db", "{folder}"]),
    (("ledger", "path"), ["--db", "foo://bar"], ["--db", "foo://bar"]),
    (("ledger", "reprice"), ["--db", "{missing}", "--table", "{request}"], ["--db", "{missing}"]),
    (
        ("ledger", "reprice"),
        ["--db", "{ledger}", "--table", "{request}", "--out", "{in_missing_folder}"],
        ["--output", "{in_missing_folder}"],
    ),
    (
        ("ledger", "reprice"),
        ["--db", "{ledger}", "--table", "{request}", "--since", "2030-01-01", "--until", "2020-01-01"],
        ["--since", "is after --until"],
    ),
    (("ledger", "ingest-batch"), ["--db", "{ledger}", "b", "--base-url", "nope"], ["--base-url", "nope"]),
    (("export",), ["--db", "{ledger}", "--format", "xml"], ["--format", "xml"]),
    (
        ("export",),
        ["--db", "{ledger}", "--format", "jsonl", "--since", "2030-01-01", "--until", "2020-01-01"],
        ["--since", "2030-01-01", "--until"],
    ),
    (
        ("export",),
        ["--db", "{ledger}", "--format", "csv", "--output", "{in_missing_folder}"],
        ["--output", "{in_missing_folder}"],
    ),
    (("export",), ["--db", "{missing}", "--format", "jsonl"], ["{missing}"]),
    (("export",), ["--db", "{ledger}", "--format", "jsonl", "--chunk-rows", "0"], ["--chunk-rows", "0"]),
    (("reconcile",), ["--db", "{missing}"], ["{missing}"]),
    (("reconcile",), ["--db", "{ledger}", "--max-gap", "lots"], ["--max-gap", "lots"]),
    (("reconcile",), ["--db", "{ledger}", "--base-url", "nope"], ["--base-url", "nope"]),
    (("reconcile",), ["--db", "{ledger}", "--bucket-width", "1w"], ["--bucket-width", "1w"]),
    (("demo",), ["--db", "foo://bar"], ["--db", "foo://bar"]),
    (("demo",), ["--db", "{in_missing_folder}"], ["--db", "{in_missing_folder}"]),
    (("demo",), ["--db", "{not_a_db}"], ["--db", "{not_a_db}"]),
    (("why",), ["req_nope", "--db", "{ledger}"], ["REQUEST_ID", "req_nope"]),
    (("why",), ["req_1", "--db", "{missing}"], ["{missing}"]),
    (("import", "claude-code"), ["{missing}"], ["{missing}"]),
    (("whatif",), ["--requests", "{missing}"], ["--requests", "{missing}"]),
    (("whatif",), ["--requests", "{request}", "--strategy", "psychic"], ["--strategy", "psychic"]),
    (("whatif",), ["--db", "{missing}"], ["{missing}"]),
    (("whatif",), ["--db", "{ledger}", "--since", "last spring"], ["--since", "last spring"]),
    (("whatif",), ["--db", "{ledger}", "--strategy", "recorded,greedy"], ["--strategy", "greedy"]),
]


def _argv(path: tuple[str, ...], args: list[str], files: dict[str, str]) -> list[str]:
    filled = [arg.format(**files) for arg in args]
    if path[0] == "ledger" and filled[:1] == ["--db"]:  # --db belongs to the ledger group
        return ["ledger", *filled[:2], *path[1:], *filled[2:]]
    return [*path, *filled]


def test_every_command_has_bad_inputs_in_the_table() -> None:
    assert set(leaf_commands(cli)) == {path for path, _, _ in BAD_INPUTS}


@pytest.mark.parametrize(
    ("path", "args", "named"), BAD_INPUTS, ids=[" ".join((*p, *a)) for p, a, _ in BAD_INPUTS]
)
def test_bad_input_is_an_error_with_exit_2(
    path: tuple[str, ...], args: list[str], named: list[str], files: dict[str, str]
) -> None:
    result = CliRunner().invoke(cli, _argv(path, args, files), env={"ANTHROPIC_API_KEY": "sk-test"})
    assert isinstance(result.exception, SystemExit), result.exception  # nothing escaped as a traceback
    assert result.exit_code == 2, result.output
    assert "Error:" in result.output and "Traceback" not in result.output
    for text in named:
        assert text.format(**files) in result.output, result.output


def test_the_installed_entry_point_prints_no_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from cachewise.cli import main; main()", "report", "--db", "foo://bar"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        == "Error: --db 'foo://bar': ledger URL foo://bar: only sqlite and postgresql are supported"
    )


@pytest.mark.parametrize("command", ["emulate", "proxy"])
def test_a_port_in_use_is_an_error(command: str, files: dict[str, str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        extra = ["--db", files["ledger"], "--no-plan"] if command == "proxy" else []
        result = CliRunner().invoke(cli, [command, "--port", port, *extra])
    assert result.exit_code == 2, result.output
    assert f"--port {port}: cannot listen" in result.output


READ_ONLY = [
    ["report"],
    ["calls"],
    ["export", "--format", "jsonl"],
    ["budget", "check", "--limit", "1", "--since", "1h"],
    ["budget", "baseline", "--since", "1d", "--output", "baseline.json"],
    ["ledger", "--db", "{db}", "info"],
    ["ledger", "--db", "{db}", "reprice", "--table", "{table}"],
]


@pytest.mark.parametrize("args", READ_ONLY, ids=[" ".join(a[:2]) for a in READ_ONLY])
@pytest.mark.parametrize("how", ["--db", "CACHEWISE_DB"])
def test_read_only_commands_never_create_a_ledger(
    args: list[str], how: str, tmp_path: Path, files: dict[str, str]
) -> None:
    typo = tmp_path / "typo.sqlite"
    argv = [a.format(db=typo, table=files["request"]) for a in args]
    env = {}
    if how == "CACHEWISE_DB":
        env["CACHEWISE_DB"] = str(typo)
        if argv[0] == "ledger":
            argv = [argv[0], *argv[3:]]
    elif argv[0] != "ledger":
        argv += ["--db", str(typo)]
    result = CliRunner().invoke(cli, argv, env=env)
    assert result.exit_code == 2, result.output
    assert f"no ledger at {typo}; run `cachewise demo` or pass --db" in result.output
    assert not typo.exists()


def test_demo_records_into_a_sqlite_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str]
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    target = work / "demo.sqlite"
    result: Result = CliRunner().invoke(
        cli, ["demo", "--db", f"sqlite:///{target}"], env={"ANTHROPIC_API_KEY": ""}
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in work.iterdir()) == ["demo.sqlite"]  # no folder named "sqlite:"
    with Ledger(target) as ledger:
        assert len(ledger.calls()) == 66


@pytest.fixture
def empty_pg_schema() -> Iterator[str]:
    """A URL to a fresh, empty PostgreSQL schema (dropped after the test)."""
    import psycopg

    admin = "postgresql://postgres@127.0.0.1:5432/test"
    schema = f"cw_cli_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{admin}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            tables = conn.execute(
                "select count(*) from information_schema.tables where table_schema = %s", (schema,)
            ).fetchone()
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        assert tables == (0,), f"{tables} tables were created in {schema}"


@pytest.mark.postgres
@pytest.mark.parametrize("args", READ_ONLY, ids=[" ".join(a[:2]) for a in READ_ONLY])
def test_read_only_commands_create_no_tables_in_postgres(
    args: list[str], empty_pg_schema: str, files: dict[str, str]
) -> None:
    argv = [a.format(db=empty_pg_schema, table=files["request"]) for a in args]
    if argv[0] != "ledger":
        argv += ["--db", empty_pg_schema]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 2, result.output
    assert "no ledger at postgresql+psycopg://postgres@127.0.0.1:5432/test" in result.output
