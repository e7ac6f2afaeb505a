"""Google Vertex AI's rawPredict shape in front of the emulator (docs/emulator.md, "Bedrock and Vertex AI").

``POST /v1/projects/{project}/locations/{location}/publishers/anthropic/models/{model}:rawPredict``
takes a Messages body without ``model`` and with ``anthropic_version``, and answers with the
Message JSON; ``:streamRawPredict`` (the body has ``"stream": true``) answers with the
first-party SSE stream. ``.../models/count-tokens:rawPredict`` counts tokens (``model`` in the
body). The bearer access token picks the workspace. Every location but ``global`` is regional.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import unquote

from .errors import ApiError
from .platform import PlatformCall, dumps, parse_body

__all__ = ["match"]

_PATH = re.compile(
    r"^/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/publishers/anthropic/models/"
    r"(?P<model>[^/:]+):(?P<op>rawPredict|streamRawPredict)$"
)


def match(method: str, path: str, headers: Mapping[str, str], body: bytes) -> PlatformCall | None:
    """``None`` unless this is a Vertex AI rawPredict / streamRawPredict call."""
    found = _PATH.match(unquote(path))
    if found is None or method.upper() != "POST":
        return None
    data = parse_body(body, f"POST {path}")
    if "anthropic_version" not in data:
        raise ApiError(400, "invalid_request_error", "anthropic_version: Field required")
    translated = {k: v for k, v in data.items() if k != "anthropic_version"}
    model, op = found.group("model"), found.group("op")
    regional = found.group("location") != "global"
    if model == "count-tokens":
        if op != "rawPredict":
            raise ApiError(404, "not_found_error", f"POST {path} is not an endpoint of this API")
        return PlatformCall("vertex", "/v1/messages/count_tokens", dumps(translated), None, regional, False)
    if "model" in translated:
        raise ApiError(400, "invalid_request_error", "model: not allowed in the body (it is in the URL)")
    streaming = op == "streamRawPredict"
    if streaming != (translated.get("stream") is True):
        raise ApiError(400, "invalid_request_error", f"stream: {op} needs stream={str(streaming).lower()}")
    translated["model"] = model
    return PlatformCall("vertex", "/v1/messages", dumps(translated), None, regional, streaming)
