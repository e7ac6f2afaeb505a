"""Model names on Amazon Bedrock and Google Vertex AI, and which of their endpoints cost more.

Bedrock names a model ``anthropic.<api id>-v1:0``, and a cross-region inference profile puts a
geography before it: ``us.``, ``eu.``, ``apac.`` (and ``jp.``, ``au.``, ``ca.``, ``us-gov.``) keep
the request in that geography, ``global.`` routes it anywhere. Vertex AI names a model
``<name>@<date>`` and puts the location in the URL (``global``, the multi-regions ``us`` / ``eu``,
or a region). From Claude Sonnet 4.5 on, every endpoint but the global one costs 10% more
(docs/api-notes.md §6.4).
"""

from __future__ import annotations

import re
from typing import Final, Literal

__all__ = [
    "BEDROCK_GEOGRAPHIES",
    "PLATFORMS",
    "Platform",
    "bedrock_geography",
    "platform_names",
    "regional_endpoint",
]

Platform = Literal["anthropic", "bedrock", "vertex"]
PLATFORMS: Final[tuple[Platform, ...]] = ("anthropic", "bedrock", "vertex")
BEDROCK_GEOGRAPHIES: Final = ("global", "us", "eu", "apac", "jp", "au", "ca", "us-gov")
_GEO = re.compile(r"^(" + "|".join(re.escape(g) for g in BEDROCK_GEOGRAPHIES) + r")\.(?=anthropic\.)")
_VERSION = re.compile(r"-v\d+(?::\d+)?$")
_VERTEX_DATE = re.compile(r"^(?P<name>[a-z0-9.-]+)@(?P<date>\d{8})$")


def bedrock_geography(model: str) -> str | None:
    """The inference profile's geography of a Bedrock model id (``"us"``, ``"global"``), else ``None``."""
    found = _GEO.match(model)
    return found.group(1) if found else None


def platform_names(model: str) -> list[str]:
    """Names to look ``model`` up under after its own, most specific first.

    ``us.anthropic.claude-haiku-4-5-20251001-v1:0`` → ``anthropic.claude-haiku-4-5-20251001-v1:0``,
    ``claude-haiku-4-5-20251001-v1:0``, ``claude-haiku-4-5-20251001``; ``claude-haiku-4-5@20251001``
    → ``claude-haiku-4-5-20251001``. A name the price table lists itself (``bedrock_ids``,
    ``vertex_ids``) is found before these.
    """
    names: list[str] = []
    rest = _GEO.sub("", model, count=1)
    if rest != model:
        names.append(rest)
    if rest.startswith("anthropic."):
        rest = rest.removeprefix("anthropic.")
        names.append(rest)
        bare = _VERSION.sub("", rest)
        if bare != rest:
            names.append(bare)
    dated = _VERTEX_DATE.match(model)
    if dated:
        names.append(f"{dated.group('name')}-{dated.group('date')}")
        names.append(dated.group("name"))
    return names


def regional_endpoint(platform: Platform, model: str, location: str | None) -> bool:
    """Whether a call went to an endpoint that carries the regional premium.

    Bedrock: every model id but a ``global.`` inference profile (an in-region id, ``us.``, ``eu.``…).
    Vertex AI: every location but ``global``. The Claude API itself: never (its US-only inference,
    ``inference_geo``, is a separate modifier).
    """
    if platform == "bedrock":
        return bedrock_geography(model) != "global"
    if platform == "vertex":
        return (location or "global") != "global"
    return False
