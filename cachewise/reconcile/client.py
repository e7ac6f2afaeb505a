"""A small Admin API client (httpx): one GET per report page, following ``next_page``.

The key is sent as ``x-api-key`` and never logged or kept beyond the client. Every failure
(refused key, a page that fails part-way, a body that is not a report page) is a
:class:`~cachewise.reconcile.errors.ReconcileError` naming the endpoint and the page.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx

from .errors import ReconcileError

__all__ = ["ADMIN_KEY_ENV", "DEFAULT_BASE_URL", "AdminClient"]

ADMIN_KEY_ENV = "ANTHROPIC_ADMIN_API_KEY"
DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
#: More pages than this for one report is a server that never says ``has_more: false``.
MAX_PAGES = 10_000


class AdminClient:
    """GET report pages from the Admin API (or the emulator: ``base_url=server.base_url``)."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get(ADMIN_KEY_ENV)
        if not key:
            raise ReconcileError(
                "Admin API", f"no admin key: set ${ADMIN_KEY_ENV} (an sk-ant-admin... key from the Console)"
            )
        self._http = httpx.Client(
            base_url=(base_url or DEFAULT_BASE_URL).rstrip("/"),
            headers={"x-api-key": key, "anthropic-version": API_VERSION},
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def pages(
        self,
        path: str,
        params: Sequence[tuple[str, str]],
        *,
        headers: Mapping[str, str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every page of one report, in order; ``page`` is set from the previous ``next_page``.

        ``headers`` are sent with every page (the analytics API's ``anthropic-beta``).
        """
        token: str | None = None
        seen: set[str] = set()
        for number in range(1, MAX_PAGES + 1):
            query = [*params, *([("page", token)] if token is not None else [])]
            body = self._get(path, query, number, headers)
            has_more = body.get("has_more")
            following = body.get("next_page")
            if not isinstance(body.get("data"), list):
                raise ReconcileError(path, "the page has no 'data' list of buckets", page=number)
            if not isinstance(has_more, bool):
                raise ReconcileError(
                    path, f"'has_more' should be true or false, got {has_more!r}", page=number
                )
            yield body
            if not has_more:
                return
            if not isinstance(following, str) or not following:
                raise ReconcileError(path, "'has_more' is true but 'next_page' is missing", page=number)
            if following in seen:
                raise ReconcileError(path, f"'next_page' {following!r} repeats an earlier page", page=number)
            seen.add(following)
            token = following
        raise ReconcileError(path, f"more than {MAX_PAGES} pages; narrow --since")

    def _get(
        self,
        path: str,
        query: Sequence[tuple[str, str]],
        number: int,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        try:
            response = self._http.get(path, params=list(query), headers=dict(headers or {}))
        except httpx.HTTPError as exc:
            raise ReconcileError(path, f"request failed: {exc}", page=number) from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200:
            raise ReconcileError(
                path, _refusal(response.status_code, body), page=number, status=response.status_code
            )
        if not isinstance(body, dict):
            raise ReconcileError(path, "the response is not a JSON object", page=number)
        return body


def _refusal(status: int, body: Any) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        text = f"HTTP {status} {error.get('type')}: {error.get('message')}"
    else:
        text = f"HTTP {status}"
    if status in (401, 403):
        text += f" (is ${ADMIN_KEY_ENV} an Admin API key, sk-ant-admin...?)"
    return text
