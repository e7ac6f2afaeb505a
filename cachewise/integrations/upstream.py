"""The proxy's pooled connections to its upstream, behind one small interface.

:func:`upstream_client` picks the sender: aiohttp's client (the ``fast`` extra) when it is installed
and no ``transport`` is given, else ``httpx2``. Both pool and keep alive their connections; the
aiohttp one spends about a sixth of the CPU per request (benchmarks/proxy_load_bench.py, docs/proxy.md).
Whichever sends, the proxy sees the same things:

* a reply with ``status_code``, ``is_success``, case-insensitive ``headers``, ``aread()`` (the body,
  content-decoded), ``aiter_raw()`` (the body as it arrives, chunk by chunk, not re-encoded) and
  ``aclose()``;
* failures as ``httpx2`` transport errors (:class:`httpx2.ConnectError`, :class:`httpx2.ConnectTimeout`,
  :class:`httpx2.ReadTimeout`, :class:`httpx2.RemoteProtocolError`...), so that the answers (502, 504)
  and the error rows' ``error_type`` do not depend on which client sent the call.

The aiohttp session is made on first use, inside the server's event loop, and honours the
environment as ``httpx2`` does by default: ``HTTP(S)_PROXY`` / ``NO_PROXY`` (read once, for the
upstream's host, when the session is made) and the trust store of ``httpx2.create_ssl_context``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Protocol

import httpx2

if TYPE_CHECKING:
    import aiohttp

__all__ = ["Upstream", "UpstreamReply", "upstream_client"]


class UpstreamReply(Protocol):
    """What the proxy reads of an upstream response (an :class:`httpx2.Response` is one)."""

    @property
    def status_code(self) -> int: ...

    @property
    def is_success(self) -> bool: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    async def aread(self) -> bytes: ...

    def aiter_raw(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class Upstream(Protocol):
    """Sends one request upstream and returns once the reply's headers are in."""

    base: str

    async def send(
        self, method: str, target: str, headers: Mapping[str, str], content: bytes
    ) -> UpstreamReply:
        """Raises :class:`httpx2.TransportError` when nothing (or nothing whole) came back."""
        ...

    async def aclose(self) -> None: ...


def upstream_client(
    base: str, *, timeout: httpx2.Timeout, transport: httpx2.AsyncBaseTransport | None = None
) -> Upstream:
    """The sender for ``base``: aiohttp when installed and no ``transport`` is given, else ``httpx2``."""
    if transport is None and importlib.util.find_spec("aiohttp") is not None:
        return AiohttpUpstream(base, timeout=timeout)
    return HttpxUpstream(base, timeout=timeout, transport=transport)


class HttpxUpstream:
    """``httpx2``'s pooled client (what a ``transport`` plugs into)."""

    def __init__(
        self, base: str, *, timeout: httpx2.Timeout, transport: httpx2.AsyncBaseTransport | None = None
    ) -> None:
        self.base = base
        self._client = httpx2.AsyncClient(base_url=base, timeout=timeout, transport=transport)

    async def send(
        self, method: str, target: str, headers: Mapping[str, str], content: bytes
    ) -> UpstreamReply:
        request = self._client.build_request(method, target, headers=headers, content=content)
        return await self._client.send(request, stream=True)

    async def aclose(self) -> None:
        await self._client.aclose()


#: Connections kept to the upstream (httpx2's default limit) and how long an idle one is kept (s):
#: a second less than uvicorn's and Node's 5 s, so the pool drops an idle connection before such an
#: upstream closes it (reusing one in the moment it closes answered a few calls with a 502).
_MAX_CONNECTIONS = 100
_KEEPALIVE_SECONDS = 4.0


class AiohttpUpstream:
    """aiohttp's pooled client; its errors are raised as the ``httpx2`` ones they correspond to."""

    def __init__(self, base: str, *, timeout: httpx2.Timeout) -> None:
        self.base = base
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._proxy: str | None = None

    def _open(self) -> aiohttp.ClientSession:
        import aiohttp

        t = self._timeout
        connector = aiohttp.TCPConnector(
            limit=_MAX_CONNECTIONS,
            keepalive_timeout=_KEEPALIVE_SECONDS,
            ssl=httpx2.create_ssl_context(),
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=None, connect=t.pool, sock_connect=t.connect, sock_read=t.read
            ),
            # the caller's headers go as they came: no user-agent or content-type of aiohttp's own
            skip_auto_headers=("User-Agent", "Content-Type"),
        )
        # aiohttp's trust_env reads the environment (and ~/.netrc) again for every request
        self._proxy = _env_proxy(self.base)
        return self._session

    async def send(
        self, method: str, target: str, headers: Mapping[str, str], content: bytes
    ) -> UpstreamReply:
        import aiohttp

        session = self._session or self._open()
        try:
            response = await session.request(
                method,
                self.base + target,
                headers=headers,
                data=content,
                allow_redirects=False,
                proxy=self._proxy,
            )
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx2.ConnectTimeout(str(exc) or "connect timed out") from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx2.ConnectError(str(exc)) from exc
        except TimeoutError as exc:
            raise httpx2.ReadTimeout(str(exc) or "timed out waiting for the reply") from exc
        except aiohttp.ClientError as exc:
            raise _protocol_error(exc) from exc
        return _AiohttpReply(response)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _env_proxy(base: str) -> str | None:
    """The proxy ``HTTP(S)_PROXY`` names for ``base``, unless ``NO_PROXY`` exempts its host."""
    from urllib.parse import urlsplit
    from urllib.request import getproxies, proxy_bypass

    parts = urlsplit(base)
    proxy = getproxies().get(parts.scheme)
    if proxy is None or (parts.hostname is not None and proxy_bypass(parts.hostname)):
        return None
    return proxy


def _protocol_error(exc: Exception) -> httpx2.TransportError:
    return httpx2.RemoteProtocolError(str(exc) or type(exc).__name__)


class _AiohttpReply:
    __slots__ = ("_response", "headers", "status_code")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status_code: int = response.status
        self.headers: Mapping[str, str] = response.headers

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    async def aread(self) -> bytes:
        try:
            return await self._response.read()
        except Exception as exc:
            raise _reading_error(exc) from exc

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        content = self._response.content
        while True:
            try:
                chunk = await content.readany()
            except Exception as exc:
                raise _reading_error(exc) from exc
            if not chunk:
                return
            yield chunk

    async def aclose(self) -> None:
        self._response.release()


def _reading_error(exc: Exception) -> Exception:
    """An error while a body is read, as ``httpx2`` raises it (anything else unchanged)."""
    import aiohttp

    if isinstance(exc, TimeoutError):
        return httpx2.ReadTimeout(str(exc) or "timed out reading the reply")
    if isinstance(exc, aiohttp.ClientError):
        return _protocol_error(exc)
    return exc
