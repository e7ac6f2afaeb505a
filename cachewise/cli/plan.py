"""``cachewise plan`` and ``cachewise lint``: where breakpoints go for a request, and what busts its cache."""

from __future__ import annotations

import json
import os
import sys
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

import click
import httpx
import json_source_map

from ..annotations import escape_data, escape_property
from ..lint import LintWarning, lint_family
from ..planner import CachePlanner, Plan
from ..pricing import PriceBook
from ..tokens import DEFAULT_BASE_URL, TokenCounter, TokenMemo
from .errors import finding
from .options import HttpUrl, output_option, price_book, price_table_option, write_output

__all__ = ["lint", "plan"]


def _load(path: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        data = json.loads(text)
    except OSError as exc:
        raise click.BadParameter(
            f"cannot read {path!r}: {exc.strerror or exc}", param_hint="REQUEST"
        ) from exc
    except ValueError as exc:
        raise click.BadParameter(f"{path} is not valid JSON: {exc}", param_hint="REQUEST") from exc
    except RecursionError as exc:
        raise click.BadParameter(f"{path} is nested too deeply to read", param_hint="REQUEST") from exc
    if not isinstance(data, dict):
        raise click.BadParameter(f"{path} must hold one Messages request object", param_hint="REQUEST")
    return data


@click.command("plan")
@click.argument("request_file", metavar="REQUEST", type=click.Path(allow_dash=True))
@click.option("--model", help="Plan for this model instead of the request's own.")
@click.option(
    "--base-url",
    type=HttpUrl(),
    help="Count tokens at this API or emulator (default $ANTHROPIC_BASE_URL or the API).",
)
@click.option(
    "--api-key", envvar="ANTHROPIC_API_KEY", help="API key for count_tokens (default $ANTHROPIC_API_KEY)."
)
@click.option("--offline", is_flag=True, help="Do not call count_tokens; plan from offline byte bounds only.")
@click.option(
    "--memo", type=click.Path(dir_okay=False), help="Token-count memo file (default in the user cache dir)."
)
@output_option("Write the planned request JSON here.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON instead of text.")
@price_table_option()
def plan(
    request_file: str,
    model: str | None,
    base_url: str | None,
    api_key: str | None,
    offline: bool,
    memo: str | None,
    output: Path | None,
    as_json: bool,
    overlays: tuple[Path, ...],
) -> None:
    """Plan prompt-cache breakpoints for REQUEST (a Messages request as JSON; - for stdin) and explain them.

    The last line is what a runtime budget would count the planned request as before sending it
    (docs/budgets.md): counted prompt tokens where known, the plan's cache writes, max_tokens of output.

    Without history the planner uses its documented defaults (docs/planner.md). Prefix sizes
    are counted with count_tokens at --base-url (the API, or a cachewise emulator) when the
    offline bounds cannot decide; with --offline, undecidable candidates are left unmarked.
    """
    request = _load(request_file)
    if model:
        request["model"] = model
    counter: TokenCounter | None = None
    http: httpx.Client | None = None
    url = base_url or os.environ.get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL
    if not offline:
        if not api_key and not base_url:
            raise click.UsageError(
                "count_tokens needs an API key (--api-key or $ANTHROPIC_API_KEY); or use --offline"
            )
        http = httpx.Client(timeout=30.0)
        counter = TokenCounter(
            http, base_url=url, api_key=api_key, memo=TokenMemo(memo) if memo else TokenMemo.default()
        )
    book = price_book(overlays)
    try:
        result = CachePlanner(counter, book=book).plan(request, record=False)  # a CachewiseError exits 2
        estimate = _estimate(result, counter, book)
    finally:
        if http is not None:
            http.close()
    if output:
        write_output(output, json.dumps(result.request, indent=2, ensure_ascii=False) + "\n", "--output")
    if as_json:
        click.echo(
            json.dumps(
                {
                    "model": result.model,
                    "minimum": result.minimum,
                    "count_calls": result.count_calls,
                    "breakpoints": [
                        {
                            "position": b.position,
                            "path": b.path,
                            "tokens": b.tokens,
                            "counted": b.counted,
                            "ttl": b.ttl,
                            "source": b.source,
                            "reason": b.reason,
                            "prefix_hash": b.prefix_hash,
                        }
                        for b in result.breakpoints
                    ],
                    "rejected": [
                        {"position": r.position, "path": r.path, "kind": r.kind, "reason": r.reason}
                        for r in result.rejected
                    ],
                    "notes": list(result.notes),
                    "budget_estimate": estimate,
                },
                indent=2,
            )
        )
    else:
        click.echo(result.explain())
        click.echo(_estimate_line(estimate))


def _estimate(result: Plan, counter: TokenCounter | None, book: PriceBook) -> dict[str, Any]:
    """What a runtime budget would count this planned request as (docs/budgets.md), as JSON."""
    from ..budget.runtime import estimate_cost, prompt_size
    from ..errors import PricingError

    body = result.request
    try:
        size = prompt_size(body, plan=result, counter=counter)
        usd = estimate_cost(
            body, result.model, book, result.planned_at, prompt_tokens=size.tokens, writes=size.writes
        )
    except (PricingError, ValueError) as exc:
        return {"usd": None, "error": str(exc)}
    return {
        "usd": format(usd, "f"),
        "prompt_tokens": size.tokens,
        "counted": size.counted,
        "source": size.source,
        "max_tokens": int(body.get("max_tokens") or 0),
    }


def _estimate_line(estimate: dict[str, Any]) -> str:
    if estimate["usd"] is None:
        return f"Budget estimate: none ({estimate['error']})"
    tokens = f"{estimate['prompt_tokens']:,} prompt tokens " + (
        f"counted ({estimate['source']})" if estimate["counted"] else "at most (a bound)"
    )
    return (
        f"Budget estimate: at most ${Decimal(estimate['usd']).quantize(Decimal('0.0001'), ROUND_CEILING)} "
        f"({tokens}; {estimate['max_tokens']:,} max_tokens of output)"
    )


def _source_lines(path: str) -> dict[str, int]:
    """JSON pointer -> 1-based line of its key (or value) in the file at ``path``; empty for stdin
    or a file that cannot be mapped (the annotation then names the file alone)."""
    if path == "-":
        return {}
    try:
        source = json_source_map.calculate(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError, json_source_map.errors.BaseError):
        return {}
    return {
        pointer: (entry.key_start or entry.value_start).line + 1
        for pointer, entry in source.items()
        if pointer
    }


def _line_of(lines: dict[str, int], path: str) -> int | None:
    """The line of a request path (``system.0.cache_control.ttl``), or of its nearest enclosing field."""
    parts = [part.replace("~", "~0").replace("/", "~1") for part in path.split(".")]
    while parts:
        line = lines.get("/" + "/".join(parts))
        if line is not None:
            return line
        parts.pop()
    return None


def _annotation(file: str, line: int | None, warning: LintWarning) -> str:
    """One GitHub Actions workflow command: ``::warning`` (or ``::error``) on FILE (and LINE)."""
    message = f"{warning.path}: [{warning.rule}] {warning.message}"
    where = f"file={escape_property(file)}" + (f",line={line}" if line is not None else "")
    return f"::{warning.severity} {where},title=cachewise lint::{escape_data(message)}"


def _lint_json(files: tuple[str, ...], warnings: list[LintWarning]) -> str:
    def of(i: int) -> list[dict[str, Any]]:
        return [{k: v for k, v in w.as_dict().items() if k != "request"} for w in warnings if w.request == i]

    return json.dumps(
        {
            "warnings": len(warnings),
            "errors": sum(1 for w in warnings if w.severity == "error"),
            "files": [{"file": name, "warnings": of(i)} for i, name in enumerate(files)],
        },
        indent=2,
        ensure_ascii=False,
    )


@click.command("lint")
@click.argument(
    "request_files", metavar="REQUEST...", nargs=-1, required=True, type=click.Path(allow_dash=True)
)
@click.option("--strict", is_flag=True, help="Exit with status 1 when there is any warning.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON document: per file, its warnings (rule, path, ...).",
)
@click.option(
    "--github/--no-github",
    default=None,
    help="Print GitHub Actions annotations (default: when $GITHUB_ACTIONS is set).",
)
def lint(request_files: tuple[str, ...], strict: bool, as_json: bool, github: bool | None) -> None:
    """Warn about cache busters in one or more Messages requests (JSON files, in call order).

    One file: volatile content (timestamps, dates, UUIDs, request ids, long hex, nonces)
    before the last breakpoint, and markers the API rejects (a cache_control type other
    than "ephemeral", a ttl other than "5m" or "1h"). Several files of one family: also
    reordered tools, tool schemas or tool_use inputs with unstable key order, and where
    the shared prefix breaks between calls.

    With --json the document goes to stdout and any annotations to stderr.
    """
    requests = [_load(path) for path in request_files]
    warnings = lint_family(requests)
    if as_json:
        click.echo(_lint_json(request_files, warnings))
    else:
        for warning in warnings:
            name = request_files[warning.request] if warning.request is not None else ""
            click.echo(f"{name}: {warning}" if name else str(warning))
        if not warnings:
            click.echo("no cache busters found")
    if github if github is not None else bool(os.environ.get("GITHUB_ACTIONS")):
        sources = [_source_lines(path) if warnings else {} for path in request_files]
        for warning in warnings:
            i = warning.request if warning.request is not None else 0
            line = _line_of(sources[i], warning.path)
            click.echo(_annotation(request_files[i], line, warning), err=as_json)
    if strict and warnings:
        finding()
