"""``cachewise ledger ingest-batch``: record a Message Batch that was created elsewhere."""

from __future__ import annotations

import click

from ..progress import progress
from .errors import CliError
from .ledger import open_ledger
from .options import HttpUrl

__all__ = ["ingest_batch"]


@click.command("ingest-batch")
@click.argument("batch_id")
@click.option(
    "--base-url",
    envvar="ANTHROPIC_BASE_URL",
    default=None,
    type=HttpUrl(),
    help="API base URL (default: $ANTHROPIC_BASE_URL, else the Claude API).",
)
@click.option(
    "--api-key",
    envvar="ANTHROPIC_API_KEY",
    default=None,
    help="API key (default: $ANTHROPIC_API_KEY). Used for the request only; never stored.",
)
@click.pass_context
def ingest_batch(ctx: click.Context, batch_id: str, base_url: str | None, api_key: str | None) -> None:
    """Read a batch's results and record one row per result, with batch pricing.

    Rows are keyed BATCH_ID:CUSTOM_ID, so ingesting the same batch again adds nothing.
    """
    import anthropic

    from ..integrations.tracker import CallTracker
    from ..ledger import CallRecord
    from ..wrap import tracker_of, wrap

    ledger = open_ledger(ctx)
    seen: list[CallRecord] = []
    try:
        with anthropic.Anthropic(api_key=api_key, base_url=base_url) as base:
            client = wrap(base, ledger=ledger, planner=False)
            tracker: CallTracker = tracker_of(client)
            tracker.on_record = seen.append
            batch = client.messages.batches.retrieve(batch_id)
            if batch.processing_status != "ended":
                raise CliError(
                    f"batch {batch_id} is {batch.processing_status}; results exist once it has ended"
                )
            counts = batch.request_counts
            total = counts.succeeded + counts.errored + counts.canceled + counts.expired
            with progress(f"ingesting {batch_id}", total) as advance:
                for _ in client.messages.batches.results(batch_id):
                    advance(1)
        before = ledger.stats.inserted
        ledger.flush()
        added = ledger.stats.inserted - before
    except anthropic.APIError as exc:
        raise CliError(f"could not read batch {batch_id}: {exc}") from exc
    ok = sum(1 for r in seen if r.status == "ok")
    click.echo(
        f"batch {batch_id}: {len(seen)} results read ({ok} succeeded), {added} new rows in {ledger.label}"
    )
