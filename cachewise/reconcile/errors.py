"""The one error reconciliation raises: a report that could not be read, named by endpoint and bucket."""

from __future__ import annotations

from ..errors import CachewiseError

__all__ = ["ReconcileError"]


class ReconcileError(CachewiseError):
    """An Admin API report could not be fetched or read (``.endpoint``, ``.page``, ``.bucket``, ``.status``).

    Raised before anything is compared; reconciliation never writes to the ledger, so a failure
    leaves it as it was.
    """

    def __init__(
        self,
        endpoint: str,
        problem: str,
        *,
        page: int | None = None,
        bucket: str | None = None,
        status: int | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.page = page
        self.bucket = bucket
        self.status = status
        where = endpoint
        if page is not None:
            where += f" page {page}"
        if bucket is not None:
            where += f", bucket {bucket}"
        super().__init__(f"{where}: {problem}")
