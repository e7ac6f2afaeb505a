"""API error responses exactly as the Claude API shapes them (docs/api-notes.md §5).

An :class:`ApiError` raised anywhere while handling a request becomes the response
``{"type":"error","error":{"type":...,"message":...},"request_id":"req_..."}`` with
its HTTP status. The strings of docs/api-notes.md §1.4 are reproduced verbatim.
"""

from __future__ import annotations

import secrets
from typing import Any

from ..errors import EmulatorError

__all__ = [
    "ApiError",
    "StreamCut",
    "auto_ttl_conflict",
    "empty_text_marker",
    "error_body",
    "invalid",
    "new_id",
    "not_found",
    "too_many_markers",
    "ttl_order",
]

_ALPHABET = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def new_id(prefix: str, length: int = 24) -> str:
    """A random id in the API's style: ``req_011C...``, ``msg_...``, ``msgbatch_...``."""
    return prefix + "".join(_ALPHABET[b % len(_ALPHABET)] for b in secrets.token_bytes(length))


class ApiError(EmulatorError):
    """An error the emulator answers with, as the API would."""

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.type = type_
        self.message = message
        self.headers = dict(headers or {})
        super().__init__(f"{status} {type_}: {message}")

    def body(self, request_id: str) -> dict[str, Any]:
        return error_body(self.type, self.message, request_id)


class StreamCut(EmulatorError):
    """Raised inside a response stream to drop the connection mid-way (fault injection)."""


def error_body(type_: str, message: str, request_id: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": type_, "message": message}, "request_id": request_id}


def invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_request_error", message)


def too_many_markers(found: int) -> ApiError:
    # docs/api-notes.md §1.4, verbatim (3P).
    return invalid(f"A maximum of 4 blocks with cache_control may be provided. Found {found}.")


def ttl_order(path: str) -> ApiError:
    # docs/api-notes.md §1.4, verbatim (3P); ``path`` is the offending 1h marker's block.
    where = f"{path}.cache_control.ttl" if path else "cache_control.ttl"
    return invalid(
        f"{where}: a ttl='1h' cache_control block must not come after a ttl='5m' "
        "cache_control block. Note that blocks are processed in the following order: "
        "`tools`, `system`, `messages`."
    )


def empty_text_marker(path: str) -> ApiError:
    # docs/api-notes.md §1.4, verbatim (3P).
    return invalid(f"{path}.text: cache_control cannot be set for empty text blocks")


def auto_ttl_conflict(path: str, block_ttl: str, auto_ttl: str) -> ApiError:
    # docs/api-notes.md §1.3 says "different TTL -> 400" but quotes no message; this text is ours.
    return invalid(
        f"cache_control.ttl: the top-level cache_control (ttl='{auto_ttl}') conflicts with the "
        f"cache_control on the last block {path} (ttl='{block_ttl}')"
    )


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found_error", message)
