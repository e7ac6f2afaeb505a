"""Amazon Bedrock's InvokeModel shape in front of the emulator (docs/emulator.md, "Bedrock and Vertex AI").

``POST /model/{modelId}/invoke`` takes a Messages body without ``model`` or ``stream`` and with
``anthropic_version`` (and ``anthropic_beta``) in it, and answers with the Message JSON.
``POST /model/{modelId}/invoke-with-response-stream`` answers with the same events as a
first-party stream, each in an AWS event-stream frame: headers ``:event-type: chunk``,
``:content-type: application/json``, ``:message-type: event`` and the payload
``{"bytes": "<base64 of the event's JSON>"}``. The frame (a big-endian prelude of total and
header lengths, its CRC32, the headers, the payload, a CRC32 of all before it) is encoded here,
without botocore. The SigV4 signature is not checked; the access key id in it picks the
workspace. An id without the ``global.`` inference-profile prefix is a regional endpoint.
"""

from __future__ import annotations

import base64
import json
import re
import struct
import zlib
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import unquote

from .errors import ApiError
from .platform import PlatformCall, dumps, parse_body, platform_event, sse_events

__all__ = ["CONTENT_TYPE", "encode_frame", "match"]

CONTENT_TYPE = "application/vnd.amazon.eventstream"
_PATH = re.compile(r"^/model/(?P<model>[^/]+)/(?P<op>invoke|invoke-with-response-stream)$")
_CREDENTIAL = re.compile(r"Credential=(?P<key>[^/,\s]+)/")
_STRING = 7  # the event-stream header value type "string"
_DROPPED = ("anthropic_version", "anthropic_beta")


def encode_frame(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message: prelude, prelude CRC, string headers, payload, message CRC."""
    encoded = b""
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        encoded += struct.pack("!B", len(raw_name)) + raw_name
        encoded += struct.pack("!BH", _STRING, len(raw_value)) + raw_value
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack("!II", total, len(encoded))
    head = prelude + struct.pack("!I", zlib.crc32(prelude)) + encoded + payload
    return head + struct.pack("!I", zlib.crc32(head))


def _chunk(event: Any) -> bytes:
    data = json.dumps(event, separators=(",", ":")).encode()
    payload = dumps({"bytes": base64.b64encode(data).decode()})
    headers = {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}
    return encode_frame(headers, payload)


def frames(sse: Iterator[bytes]) -> Iterator[bytes]:
    """The emulator's SSE chunks (whole events), one event-stream frame per event."""
    for _, event in sse_events(sse):
        yield _chunk(platform_event(event))


def match(method: str, path: str, headers: Mapping[str, str], body: bytes) -> PlatformCall | None:
    """``None`` unless this is a Bedrock InvokeModel call."""
    found = _PATH.match(path)
    if found is None or method.upper() != "POST":
        return None
    model = unquote(found.group("model"))
    data = parse_body(body, f"POST {path}")
    if "anthropic_version" not in data:
        raise ApiError(400, "invalid_request_error", "anthropic_version: Field required")
    streaming = found.group("op") == "invoke-with-response-stream"
    translated = {k: v for k, v in data.items() if k not in _DROPPED}
    translated["model"] = model
    if streaming:
        translated["stream"] = True
    credential = _CREDENTIAL.search(headers.get("authorization", ""))
    return PlatformCall(
        platform="bedrock",
        path="/v1/messages",
        body=dumps(translated),
        key=f"aws-{credential.group('key')}" if credential else None,
        regional=not model.startswith("global."),
        streaming=streaming,
        frames=frames,
        stream_type=CONTENT_TYPE if streaming else None,
    )
