"""Fixtures for the fleet tests: a Redis key prefix and a PostgreSQL schema of their own, removed after.

Redis is expected at 127.0.0.1:6379 (``CACHEWISE_TEST_REDIS_URL`` overrides; ``redis-server
--daemonize yes`` starts one) and PostgreSQL at 127.0.0.1:5432 (``CACHEWISE_TEST_PG_URL``). When
either is unreachable the tests fail: they never skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis

from tests.ledger.conftest import pg_schema

REDIS_URL = os.environ.get("CACHEWISE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_store_url() -> Iterator[str]:
    """A ``redis://`` URL whose key prefix belongs to this test."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is required by the fleet tests and is unreachable at {REDIS_URL} ({exc})")
    prefix = f"cw-test-{uuid.uuid4().hex[:12]}"
    try:
        yield f"{REDIS_URL}?prefix={prefix}"
    finally:
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture
def pg_store_url() -> Iterator[str]:
    """A ``postgresql://`` URL whose search path is a schema of this test's own."""
    with pg_schema("cw_fleet") as (url, _):
        yield url
