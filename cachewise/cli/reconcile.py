"""``cachewise reconcile``: the ledger against the organisation's Admin API usage and cost reports."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import click

from ..errors import LedgerError
from .errors import CliError, finding
from .options import HttpUrl, count_option, db_option, ledger_url, window

__all__ = ["reconcile"]

_SHORT = {
    "input_tokens": "input",
    "ephemeral_5m_input_tokens": "write 5m",
    "ephemeral_1h_input_tokens": "write 1h",
    "cache_read_input_tokens": "read",
    "output_tokens": "output",
}


class GapThreshold(click.ParamType[Decimal]):
    """``2%`` or ``0.02``: the largest gap, as a share of the report's total, that still passes."""

    name = "share"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Decimal:
        if isinstance(value, Decimal):
            return value
        text = str(value).strip()
        percent = text.endswith("%")
        try:
            share = Decimal(text.removesuffix("%"))
        except InvalidOperation:
            self.fail(f"{text!r} is not a share: write 2% or 0.02", param, ctx)
        if percent:
            share /= 100
        if not share.is_finite() or share < 0:
            self.fail(f"{text!r}: a share must be 0 or more", param, ctx)
        return share


def _usd(value: str | None) -> str:
    if value is None:
        return "n/a"
    return f"{Decimal(value):.6f}"


def _signed(value: int) -> str:
    return f"{value:+d}" if value else "0"


def _table(result: dict[str, Any]) -> str:
    lines = [
        f"reconciled {result['since'][:19]} .. {result['until'][:19]} UTC, {result['bucket_width']} buckets"
        + f" ({result['source']})"
        + (f", by {result['group_by']}" if result["group_by"] else "")
        + f": {result['keys_compared']} keys",
        f"report: {result['report_tokens']} tokens, ${_usd(result['report_cost'])}   "
        f"ledger: {result['ledger_tokens']} tokens, ${_usd(result['ledger_cost'])}",
    ]
    gaps = result["gaps"]
    if gaps:
        lines.append("")
        head = f"{'gap':<19} {'bucket':<16} {'model':<26} {'group':<16}"
        head += "".join(f" {name:>9}" for name in _SHORT.values())
        head += f" {'report $':>10} {'ledger $':>10} {'gap $':>10}"
        lines.append(head)
        for gap in gaps:
            line = f"{gap['kind']:<19} {gap['starting_at'][:16].replace('T', ' '):<16} {gap['model']:<26} "
            line += f"{(gap['group'] or '-'):<16}"
            line += "".join(f" {_signed(gap['token_gap'][name]):>9}" for name in _SHORT)
            line += "".join(f" {_usd(gap[name]):>10}" for name in ("report_cost", "ledger_cost", "cost_gap"))
            lines.append(line)
        lines.append("")
        from ..reconcile import EXPLANATIONS

        for kind in sorted(result["gaps_by_kind"]):
            lines.append(f"{kind}: {EXPLANATIONS[kind]}")
        lines.append("(token and cost gaps are report minus ledger)")
    ratio = result["gap_ratio"]
    share = "of the report" if ratio is None else f"{Decimal(ratio) * 100:.2f}% of the report"
    if not gaps:
        lines.append("zero gap: the ledger agrees with the report in every bucket")
    elif result["measure"] == "cost":
        lines.append(f"gap: ${_usd(result['gap'])} ({share}'s cost)")
    else:
        why = "no cost report at this width" if result["source"] == "usage_report" else "no cost rows"
        lines.append(f"gap: {result['gap']} tokens ({share}'s tokens; {why})")
    return "\n".join(lines) + "\n"


@click.command()
@db_option()
@click.option("--since", default="30d", show_default=True, help="Start: 30d, 24h, today or an ISO date.")
@click.option("--until", default=None, help="End, exclusive: same forms as --since (default: now).")
@click.option(
    "--bucket-width",
    "width",
    type=click.Choice(["1d", "1h", "1m"]),
    default="1d",
    show_default=True,
    help="Bucket width. Costs are compared at 1d only (the cost report is daily).",
)
@click.option(
    "--group-by",
    type=click.Choice(["workspace_id", "api_key_id"]),
    default=None,
    help="Compare per workspace or API key too; the ledger side is read from the tag --group-tag.",
)
@click.option(
    "--group-tag",
    default=None,
    metavar="TAG",
    help="The ledger tag holding the --group-by value (default: the --group-by name).",
)
@click.option(
    "--base-url",
    default=None,
    type=HttpUrl(),
    help="Admin API base URL (default: the Claude API; a cachewise emulator's URL to try it offline).",
)
@click.option(
    "--admin-key",
    envvar="ANTHROPIC_ADMIN_API_KEY",
    default=None,
    help="Admin API key, sk-ant-admin... (default: $ANTHROPIC_ADMIN_API_KEY). Never stored.",
)
@click.option(
    "--source",
    type=click.Choice(["usage_report", "analytics", "auto"]),
    default="usage_report",
    show_default=True,
    help="Which reports: the legacy usage and cost reports, the Usage and Cost Analytics API (beta; "
    "costs at every width and per key), or auto: analytics, the legacy reports if it answers 404.",
)
@count_option(
    "--limit",
    default=0,
    minimum=0,
    help="Buckets (analytics: rows) per report page (0: the API's default; analytics: 1000).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the reconciliation as JSON.")
@click.option(
    "--max-gap",
    type=GapThreshold(),
    default=None,
    help="Exit 1 when the gap exceeds this share of the report's total (2% or 0.02).",
)
def reconcile(
    db: str | None,
    since: str,
    until: str | None,
    width: str,
    group_by: str | None,
    group_tag: str | None,
    base_url: str | None,
    admin_key: str | None,
    source: str,
    limit: int,
    as_json: bool,
    max_gap: Decimal | None,
) -> None:
    """Compare the ledger with the organisation's usage and cost reports (Admin API), bucket by bucket.

    Per bucket x model (x workspace or key): uncached input, 5m and 1h cache writes, cache
    reads, output, and (daily buckets) cost. Prints each gap with its kind: calls that
    bypassed cachewise, rows priced differently, buckets missing on either side. Reads only:
    the ledger is never written. Exit 1 with --max-gap when the gap is larger.
    """
    from ..ledger import Ledger
    from ..ledger.migrations import latest_version
    from ..reconcile import AdminClient
    from ..reconcile import reconcile as run

    now = datetime.now(UTC)
    start, end = window(since, until, now)
    assert start is not None
    end = end or now
    url = ledger_url(db, must_exist=True)
    try:
        with (
            Ledger(url, create=False, upgrade=False, flush_on_signal=False) as ledger,
            AdminClient(admin_key, base_url=base_url) as client,
        ):
            if ledger.schema_version() < latest_version():  # reading never upgrades (nothing written)
                shown = f"--db {db!r}" if db is not None else "the ledger"
                raise CliError(f"{shown} has an older schema; run `cachewise ledger upgrade` first")
            result = run(
                ledger,
                client,
                since=start,
                until=end,
                width=width,
                group_by=group_by,  # type: ignore[arg-type]
                group_tag=group_tag,
                limit=limit or None,
                source=source,  # type: ignore[arg-type]
            )
    except LedgerError as exc:
        raise CliError(f"--db {db!r}: {exc}" if db is not None else str(exc)) from exc
    data = result.as_dict()
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(_table(data), nl=False)
    if max_gap is not None and result.gap_ratio > max_gap:
        click.echo(f"gap {data['gap_ratio'] or 'unbounded'} is over --max-gap {max_gap}", err=True)
        finding()
