"""Tags follow the code: nesting, threads (only when bound), asyncio tasks."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from cachewise.tags import current, tags
from tests.ledger.conftest import make_record


def test_nesting_merges_inner_wins_and_restores() -> None:
    assert current() == {}
    with tags(feature="search", user="u1") as active:
        assert active == {"feature": "search", "user": "u1"}
        with tags(user="u2", step=3):
            assert current() == {"feature": "search", "user": "u2", "step": "3"}
            with tags(feature=None):
                assert current() == {"user": "u2", "step": "3"}
        assert current() == {"feature": "search", "user": "u1"}
    assert current() == {}
    assert tags.current is current


def test_restored_after_an_exception() -> None:
    with pytest.raises(RuntimeError), tags(a="1"):
        raise RuntimeError("boom")
    assert current() == {}


def test_current_returns_a_copy() -> None:
    with tags(a="1"):
        current()["a"] = "changed"
        assert current() == {"a": "1"}


def test_bad_tags_are_refused() -> None:
    with pytest.raises(TypeError, match="values are str"):
        tags(a=[1])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty"):
        tags({"": "x"})


def test_records_capture_tags_at_creation() -> None:
    with tags(feature="search"):
        rec = make_record(1)
    assert rec.tags == {"feature": "search"}
    assert make_record(2).tags == {}


def test_new_threads_do_not_inherit_unless_bound() -> None:
    seen: dict[str, dict[str, str]] = {}

    def look(name: str) -> None:
        seen[name] = current()

    with tags(feature="search"):
        plain = threading.Thread(target=look, args=("plain",))
        bound = threading.Thread(target=tags.bind(look), args=("bound",))
        plain.start()
        bound.start()
        plain.join()
        bound.join()
        with ThreadPoolExecutor(2) as pool:
            pool.submit(tags.bind(look), "pool").result()
    assert seen == {"plain": {}, "bound": {"feature": "search"}, "pool": {"feature": "search"}}


def test_threads_keep_their_own_tags() -> None:
    barrier = threading.Barrier(8)
    results: dict[int, dict[str, str]] = {}

    def work(n: int) -> None:
        with tags(worker=n):
            barrier.wait()
            results[n] = current()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {n: {"worker": str(n)} for n in range(8)}


async def test_asyncio_tasks_copy_tags_at_creation() -> None:
    async def look(delay: float) -> dict[str, str]:
        await asyncio.sleep(delay)
        return current()

    async def scoped(n: int) -> dict[str, str]:
        async with tags(task=n):
            await asyncio.sleep(0.01)
            return current()

    with tags(feature="search"):
        task = asyncio.create_task(look(0.02))
    outside = asyncio.create_task(look(0.0))
    assert await task == {"feature": "search"}
    assert await outside == {}
    results = await asyncio.gather(*(scoped(n) for n in range(5)))
    assert results == [{"task": str(n)} for n in range(5)]
    assert current() == {}


def test_decorator_form() -> None:
    @tags(feature="batch")
    def work() -> dict[str, str]:
        return current()

    assert work() == {"feature": "batch"}
    assert current() == {}
