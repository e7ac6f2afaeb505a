"""The budget pytest plugin, run in a nested pytest session (pytester)."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

# Imported here so the nested sessions find them loaded (pytester drops modules a run imports).
import cachewise.ledger
import cachewise.pytest_plugin  # noqa: F401

pytest_plugins = ["pytester"]

# Until the pytest11 entry point is installed, load the plugin by name.
_LOADED = any(ep.value == "cachewise.pytest_plugin" for ep in entry_points(group="pytest11"))
QUIET = [] if _LOADED else ["-p", "cachewise.pytest_plugin"]
# Plugins the nested sessions do not need (faster start-up).
QUIET += ["-p", "no:hypothesispytest", "-p", "no:benchmark", "-p", "no:inline_snapshot", "-p", "no:anyio",
          "-p", "no:asyncio", "-p", "no:cacheprovider"]  # fmt: skip
# The cost tables print with a budget or --cachewise-costs; most tests here read them.
PLUGIN = [*QUIET, "--cachewise-costs"]

TESTS = '''
from datetime import UTC, datetime

import pytest

from cachewise.budget import session_collector
from cachewise.ledger import CallRecord
from cachewise.usage import Usage

N = iter(range(1000))


def call(model="claude-haiku-4-5", tokens=100_000):
    """What a wrapped client does after each call: hand the record to the session collector."""
    record = CallRecord.priced(
        usage=Usage(input_tokens=tokens, output_tokens=0), model=model,
        started_at=datetime(2026, 11, 1, tzinfo=UTC), request_id=f"r{next(N)}",
    )
    collector = session_collector()
    assert collector is not None
    collector.add(record)


def test_cheap():
    call(tokens=100_000)  # $0.10 on Haiku 4.5 ($1/M)


def test_dear():
    call(tokens=500_000)  # $0.50


@pytest.mark.cachewise_budget(0.20)
def test_marked_over():
    call(tokens=300_000)  # $0.30 > $0.20


@pytest.mark.cachewise_budget("0.50")
def test_marked_within():
    call(tokens=200_000)  # $0.20
'''


def test_tables_and_session_budget_within(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_calls=TESTS)
    result = pytester.runpytest_inprocess(*PLUGIN, "--cachewise-budget", "2.00", "-k", "not marked_over")
    result.assert_outcomes(passed=3)
    assert result.ret == 0
    out = result.stdout.str()
    assert "cachewise cost" in out
    result.stdout.fnmatch_lines(["*test_calls.py::test_dear*1*0*$0.5000*", "*claude-haiku-4-5*3*0*$0.8000*"])
    assert "total $0.8000 for 3 call(s); budget $2.00" in out


def test_session_over_budget_fails(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_calls=TESTS)
    result = pytester.runpytest_inprocess(*PLUGIN, "--cachewise-budget", "0.75", "-k", "not marked_over")
    result.assert_outcomes(passed=3)  # every test passed, the session did not: .10 + .50 + .20 > .75
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*cachewise budget FAILED: session spent $0.8000 > budget $0.75*"])


def test_marker_fails_one_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_calls=TESTS)
    result = pytester.runpytest_inprocess(*PLUGIN)
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        ["*cachewise budget for test_calls.py::test_marked_over: spent $0.3000 > budget $0.2"]
    )


def test_unpriced_call_fails_session(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_calls=TESTS + "\n\ndef test_unknown():\n    call(model='claude-unknown-9')\n")
    result = pytester.runpytest_inprocess(*PLUGIN, "--cachewise-budget", "100", "-k", "unknown")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*1 UNPRICED call(s) not in the total*", "*cannot be priced*never $0*"])


def test_bad_amount_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_calls=TESTS)
    result = pytester.runpytest_inprocess(*PLUGIN, "--cachewise-budget", "lots")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--cachewise-budget: 'lots' is not an amount in USD*"])


def test_no_calls_no_table(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_x():\n    assert True\n")
    result = pytester.runpytest_inprocess(*PLUGIN)
    assert result.ret == 0
    assert "cachewise cost" not in result.stdout.str()


THREADS = """
import threading
from datetime import UTC, datetime

from cachewise.budget import session_collector
from cachewise.ledger import CallRecord
from cachewise.tags import current
from cachewise.usage import Usage


def call(request_id):
    record = CallRecord.priced(
        usage=Usage(input_tokens=100_000), model="claude-haiku-4-5",
        started_at=datetime(2026, 11, 1, tzinfo=UTC), request_id=request_id,
    )
    session_collector().add(record)
    return record


def test_thread():
    worker = threading.Thread(target=call, args=("t1",))
    worker.start()
    worker.join()


def test_tags_untouched():
    assert "test" not in current()
    assert "test" not in call("t2").tags


def test_tagged_when_asked():
    pass
"""


def test_calls_from_threads_are_attributed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_threads=THREADS)
    result = pytester.runpytest_inprocess(*PLUGIN, "-k", "not tagged")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["test_threads.py::test_thread *1*0*$0.1000*"])


def test_tag_tests_option(pytester: pytest.Pytester) -> None:
    source = THREADS.replace(
        "def test_tagged_when_asked():\n    pass",
        "def test_tagged_when_asked(request):\n    assert call('t3').tags['test'] == request.node.nodeid",
    )
    pytester.makepyfile(test_threads=source)
    result = pytester.runpytest_inprocess(*PLUGIN, "--cachewise-tag-tests", "-k", "tagged_when_asked")
    result.assert_outcomes(passed=1)


def test_quiet_without_budget_or_costs_flag(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_threads=THREADS)
    result = pytester.runpytest_inprocess(*QUIET, "-k", "not tagged")
    result.assert_outcomes(passed=2)
    assert "cachewise cost" not in result.stdout.str()


# -- under pytest-xdist: the controller judges the calls of every worker ----------------------

XDIST_CALLS = """
import uuid
from datetime import UTC, datetime

from cachewise.budget import session_collector
from cachewise.ledger import CallRecord
from cachewise.usage import Usage


def call(tokens, model="claude-haiku-4-5", request_id=None):
    record = CallRecord.priced(
        usage=Usage(input_tokens=tokens), model=model,
        started_at=datetime(2026, 11, 1, tzinfo=UTC), request_id=request_id or f"r-{uuid.uuid4().hex}",
    )
    session_collector().add(record)
"""

#: Four files, so ``--dist loadfile`` over two workers gives each worker some of the calls.
FILES = {
    "test_a": XDIST_CALLS + "\n\ndef test_a():\n    call(100_000)  # $0.10 on Haiku 4.5\n",
    "test_b": XDIST_CALLS + "\n\ndef test_b():\n    call(200_000)\n",
    "test_c": XDIST_CALLS + "\n\ndef test_c():\n    call(300_000)\n",
    "test_d": XDIST_CALLS + "\n\ndef test_d():\n    call(400_000)\n",
}
XDIST = ["-p", "xdist", "-n", "2", "--dist", "loadfile"]


def test_the_session_budget_counts_the_calls_of_every_worker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(**FILES)
    # $1.00 in all; no worker ran more than $0.70 of it ({a, c} / {b, d} or any other split)
    result = pytester.runpytest_subprocess(*PLUGIN, *XDIST, "--cachewise-budget", "0.75")
    result.assert_outcomes(passed=4)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*test_d.py::test_d*1*0*$0.4000*",
            "*claude-haiku-4-5*4*0*$1.0000*",
            "total $1.0000 for 4 call(s); budget $0.75",
            "*cachewise budget FAILED: session spent $1.0000 > budget $0.75*",
        ]
    )


def test_within_budget_the_merged_session_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(**FILES)
    result = pytester.runpytest_subprocess(*PLUGIN, *XDIST, "--cachewise-budget", "1.00")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["total $1.0000 for 4 call(s); budget $1.00"])


def test_an_unpriced_call_on_one_worker_fails_the_session(pytester: pytest.Pytester) -> None:
    files = dict(FILES, test_d=XDIST_CALLS + "\n\ndef test_d():\n    call(10, model='claude-unknown-9')\n")
    pytester.makepyfile(**files)
    result = pytester.runpytest_subprocess(*PLUGIN, *XDIST, "--cachewise-budget", "100")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*1 UNPRICED call(s) not in the total*", "*cannot be priced*never $0*"])


def test_one_request_id_seen_by_two_workers_is_counted_once(pytester: pytest.Pytester) -> None:
    # --dist each runs the test on both workers: the same request (a batch result read twice) is one call
    same = XDIST_CALLS + "\n\ndef test_same():\n    call(100_000, request_id='req_shared')\n"
    pytester.makepyfile(test_same=same)
    result = pytester.runpytest_subprocess(*PLUGIN, "-p", "xdist", "-n", "2", "--dist", "each")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["total $0.1000 for 1 call(s)"])
