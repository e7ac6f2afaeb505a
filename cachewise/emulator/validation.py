"""Request bodies checked at the edge, as the API checks them: 400 naming the field path.

Two steps, both before anything else reads the body:

1. :func:`parse_json` turns bytes into a JSON object or raises a 400: invalid JSON or
   UTF-8, ``NaN``/``Infinity``, integers too long to parse, a body that is not an
   object, nesting deeper than :data:`MAX_DEPTH`, and strings (or keys) holding an
   unpaired surrogate, which no UTF-8 text can carry.
2. :func:`check_messages`, :func:`check_count_tokens` and :func:`check_batch` validate
   the shape with small pydantic models (strict types, extra keys allowed, as the SDK's
   ``extra_body`` and beta fields need). Their field names and literals are the SDK's
   own (``anthropic.types``; ``tests/emulator/test_validation.py`` checks them against
   the installed SDK), and the block ``type`` tags are read from the SDK's unions at
   import time. The first error becomes ``<path>: <message>``, e.g.
   ``messages.0.content.1.text: Input should be a valid string``.

Why not a ``TypeAdapter`` over the SDK's ``MessageCreateParams`` itself: its lists are
``Iterable[...]``, which pydantic validates lazily (errors surface only while iterating,
without their path), and its block unions are untagged, so one bad block yields an
error per union member. The models here mirror only what the emulator reads.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias, Union, get_args, get_type_hints

from anthropic.types import (
    ContentBlockParam,
    MessageParam,
    ThinkingConfigParam,
    ToolChoiceParam,
)
from anthropic.types.tool_result_block_param import Content as ToolResultContent
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    StrictBool,
    StrictInt,
    StrictStr,
    Tag,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from .errors import ApiError, invalid

__all__ = [
    "BLOCK_TYPES",
    "MAX_DEPTH",
    "ROLES",
    "THINKING_TYPES",
    "TOOL_CHOICE_TYPES",
    "TOOL_RESULT_TYPES",
    "BatchParams",
    "BatchRequest",
    "CacheControl",
    "CountTokensParams",
    "CustomTool",
    "DocumentBlock",
    "Message",
    "MessagesParams",
    "OutputConfig",
    "RedactedThinkingBlock",
    "ServerTool",
    "TextBlock",
    "ThinkingBlock",
    "ThinkingEnabled",
    "Tool",
    "ToolChoiceOther",
    "ToolChoiceTool",
    "ToolResultBlock",
    "ToolUseBlock",
    "check_batch",
    "check_count_tokens",
    "check_messages",
    "parse_json",
    "sdk_tags",
]

MAX_DEPTH = 128  # ours: the API publishes no nesting limit (docs/emulator.md, "Errors")

_NOT_JSON = "There was an error parsing the body of your request: it is not valid JSON"


# -- step 1: bytes -> a JSON object ---------------------------------------------------------


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, or a 400 ``invalid_request_error`` saying what is wrong."""
    try:
        body = json.loads(raw or b"null", parse_constant=_no_constant)
    except RecursionError:
        raise invalid(f"{_NOT_JSON}: nesting deeper than {MAX_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError):
        raise invalid(_NOT_JSON) from None
    if not isinstance(body, dict):
        raise invalid("Input should be a valid dictionary")
    _check_tree(body)
    return body


def _bad_text(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _check_tree(body: dict[str, Any]) -> None:
    """Depth and unpaired surrogates, without recursion (the texts are ours)."""
    stack: list[tuple[Any, str, int]] = [(body, "", 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            if _bad_text(value):
                raise invalid(
                    f"{path or 'body'}: the string contains an unpaired surrogate (not valid Unicode)"
                )
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > MAX_DEPTH:
            where = ".".join(path.split(".")[:6]) + ".…"
            raise invalid(f"{where}: nesting deeper than {MAX_DEPTH} levels is not supported")
        if isinstance(value, dict):
            for key, item in value.items():
                where = f"{path}.{key}" if path else str(key)
                if _bad_text(key):
                    raise invalid(
                        f"{path or 'body'}: a key contains an unpaired surrogate (not valid Unicode)"
                    )
                stack.append((item, where, depth + 1))
        else:
            stack.extend((item, f"{path}.{i}" if path else str(i), depth + 1) for i, item in enumerate(value))


# -- step 2: the shape ------------------------------------------------------------------------


def _literal_values(hint: Any) -> set[str]:
    values: set[str] = set()
    for arg in get_args(hint) or (hint,):
        if isinstance(arg, str):
            values.add(arg)
        elif arg is not type(None):
            values |= _literal_values(arg)
    return values


def sdk_tags(union: Any, field: str = "type") -> tuple[str, ...]:
    """The ``field`` literals of every TypedDict in one of the SDK's unions, in order."""
    tags: list[str] = []
    for member in get_args(union):
        hints = get_type_hints(member)
        if field in hints:
            tags.extend(sorted(_literal_values(hints[field])))
    return tuple(dict.fromkeys(tags))


BLOCK_TYPES = sdk_tags(ContentBlockParam)
TOOL_RESULT_TYPES = sdk_tags(ToolResultContent)
ROLES = sdk_tags(MessageParam, "role")
THINKING_TYPES = sdk_tags(ThinkingConfigParam)
TOOL_CHOICE_TYPES = sdk_tags(ToolChoiceParam)

_CONFIG = ConfigDict(extra="allow", protected_namespaces=())


class _Model(BaseModel):
    model_config = _CONFIG


class CacheControl(_Model):
    type: Literal["ephemeral"]
    ttl: Literal["5m", "1h"] | None = None


class _Block(_Model):
    type: StrictStr
    cache_control: CacheControl | None = None


class TextBlock(_Block):
    text: StrictStr


class _Sourced(_Block):
    source: dict[str, Any]


class DocumentBlock(_Sourced):
    title: StrictStr | None = None
    context: StrictStr | None = None


class ToolUseBlock(_Block):
    id: StrictStr
    name: StrictStr
    input: dict[str, Any]


class ThinkingBlock(_Block):
    thinking: StrictStr
    signature: StrictStr


class RedactedThinkingBlock(_Block):
    data: StrictStr


def _unknown(field: str, tags: tuple[str, ...]) -> Callable[[Any], Any]:
    expected = ", ".join(f"'{t}'" for t in tags)

    def fail(value: Any) -> Any:
        if not isinstance(value, Mapping):
            raise PydanticCustomError(
                "model_attributes_type", "Input should be a valid dictionary or object to extract fields from"
            )
        tag = value.get(field)
        if not isinstance(tag, str):
            raise PydanticCustomError(
                "union_tag_not_found", "Unable to extract tag using discriminator '{field}'", {"field": field}
            )
        raise PydanticCustomError(
            "union_tag_invalid",
            "Input tag '{tag}' found using '{field}' does not match any of the expected tags: {expected}",
            {"tag": tag, "field": field, "expected": expected},
        )

    return fail


def _tagged(models: Mapping[str, Any], tags: tuple[str, ...], default: Any, field: str = "type") -> Any:
    """A union picked by ``field`` (loc segments ``#tag`` are dropped from error paths)."""
    known = frozenset(tags)

    def pick(value: Any) -> str:
        if isinstance(value, Mapping):
            tag = value.get(field)
            if isinstance(tag, str) and tag in known:
                return f"#{tag}" if tag in models else "#other"
        return "#bad"

    choices: list[Any] = [Annotated[model, Tag(f"#{tag}")] for tag, model in models.items()]
    choices.append(Annotated[default, Tag("#other")])
    choices.append(Annotated[Annotated[Any, AfterValidator(_unknown(field, tags))], Tag("#bad")])
    return Annotated[Union[tuple(choices)], Discriminator(pick)]  # noqa: UP007 (built at run time)


def _text_or_list(item: Any) -> Any:
    def pick(value: Any) -> str:
        return "#str" if isinstance(value, str) else "#list"

    return Annotated[
        Union[Annotated[StrictStr, Tag("#str")], Annotated[list[item], Tag("#list")]],  # noqa: UP007
        Discriminator(pick),
    ]


_INNER_MODELS: dict[str, Any] = {"text": TextBlock, "image": _Sourced, "document": DocumentBlock}
if TYPE_CHECKING:  # the unions are built at run time; to the type checker they are Any
    ToolResultContent_: TypeAlias = Any
    MessageContent: TypeAlias = Any
    SystemContent: TypeAlias = Any
    Thinking: TypeAlias = Any
    ToolChoice: TypeAlias = Any
else:
    _inner = {k: v for k, v in _INNER_MODELS.items() if k in TOOL_RESULT_TYPES}
    ToolResultContent_ = _text_or_list(_tagged(_inner, TOOL_RESULT_TYPES, _Block))


class ToolResultBlock(_Block):
    tool_use_id: StrictStr
    content: ToolResultContent_ | None = None
    is_error: StrictBool | None = None


_BLOCK_MODELS: dict[str, Any] = {
    "text": TextBlock,
    "image": _Sourced,
    "document": DocumentBlock,
    "tool_use": ToolUseBlock,
    "server_tool_use": ToolUseBlock,
    "tool_result": ToolResultBlock,
    "thinking": ThinkingBlock,
    "redacted_thinking": RedactedThinkingBlock,
}
if not TYPE_CHECKING:
    _blocks = {k: v for k, v in _BLOCK_MODELS.items() if k in BLOCK_TYPES}
    MessageContent = _text_or_list(_tagged(_blocks, BLOCK_TYPES, _Block))
    SystemContent = _text_or_list(TextBlock)


class Message(_Model):
    role: Literal["user", "assistant", "system"]
    content: MessageContent


class CustomTool(_Model):
    name: StrictStr
    input_schema: dict[str, Any]
    type: Literal["custom"] | None = None
    cache_control: CacheControl | None = None


class ServerTool(_Model):
    type: StrictStr
    name: StrictStr
    cache_control: CacheControl | None = None


def _tool_kind(value: Any) -> str:
    if isinstance(value, Mapping) and value.get("type") not in (None, "custom"):
        return "#server"
    return "#custom"


Tool = Annotated[
    Union[Annotated[CustomTool, Tag("#custom")], Annotated[ServerTool, Tag("#server")]],  # noqa: UP007
    Discriminator(_tool_kind),
]


class ThinkingEnabled(_Model):
    type: Literal["enabled"]
    budget_tokens: StrictInt


class _Typed(_Model):
    type: StrictStr


if not TYPE_CHECKING:
    Thinking = _tagged({"enabled": ThinkingEnabled}, THINKING_TYPES, _Typed)


class ToolChoiceTool(_Model):
    type: Literal["tool"]
    name: StrictStr
    disable_parallel_tool_use: StrictBool | None = None


class ToolChoiceOther(_Model):
    type: StrictStr
    disable_parallel_tool_use: StrictBool | None = None


if not TYPE_CHECKING:
    ToolChoice = _tagged({"tool": ToolChoiceTool}, TOOL_CHOICE_TYPES, ToolChoiceOther)


class OutputConfig(_Model):
    effort: Literal["low", "medium", "high", "xhigh", "max"] | None = None
    format: dict[str, Any] | None = None


class CountTokensParams(_Model):
    """What the emulator reads of a ``count_tokens`` body (``MessageCountTokensParams``)."""

    model: StrictStr
    messages: list[Message]
    system: SystemContent | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None
    cache_control: CacheControl | None = None
    output_config: OutputConfig | None = None
    speed: Literal["standard", "fast"] | None = None


class MessagesParams(CountTokensParams):
    """What the emulator reads of a Messages body (``MessageCreateParams``)."""

    max_tokens: StrictInt
    stream: StrictBool | None = None
    stop_sequences: list[StrictStr] | None = None
    metadata: dict[str, Any] | None = None
    inference_geo: StrictStr | None = None
    service_tier: Literal["auto", "standard_only"] | None = None


class BatchRequest(_Model):
    custom_id: StrictStr
    params: MessagesParams


class BatchParams(_Model):
    requests: list[BatchRequest]


# Field order decides which error is reported first: the required ones, as before.
_FIRST = ("model", "max_tokens", "messages")


def _path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc if not (isinstance(p, str) and p.startswith("#")))


def _first_error(error: ValidationError, prefix: str = "") -> ApiError:
    errors = error.errors(include_url=False, include_context=False, include_input=False)

    def rank(item: Any) -> tuple[int, int]:
        head = item["loc"][0] if item["loc"] else ""
        return (_FIRST.index(head) if head in _FIRST else len(_FIRST), 0)

    first = min(errors, key=rank)
    path = _path(first["loc"])
    where = ".".join(p for p in (prefix, path) if p)
    return invalid(f"{where}: {first['msg']}" if where else first["msg"])


_MESSAGES = TypeAdapter(MessagesParams)
_COUNT = TypeAdapter(CountTokensParams)
_BATCH = TypeAdapter(BatchParams)


def _check(adapter: TypeAdapter[Any], body: Mapping[str, Any], prefix: str = "") -> None:
    try:
        adapter.validate_python(body)
    except ValidationError as exc:
        raise _first_error(exc, prefix) from None


def check_messages(body: Mapping[str, Any], prefix: str = "") -> None:
    """400 on the first shape error of a Messages body (``prefix`` for batch lines)."""
    _check(_MESSAGES, body, prefix)


def check_count_tokens(body: Mapping[str, Any]) -> None:
    _check(_COUNT, body)


def check_batch(body: Mapping[str, Any]) -> None:
    """A batch body: ``requests`` of ``{custom_id, params}``, each ``params`` a Messages body."""
    _check(_BATCH, body)
