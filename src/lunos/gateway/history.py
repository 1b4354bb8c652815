"""Where history rows go. The store-backed writer lives in `store/`; this is the seam."""

from __future__ import annotations

from typing import Protocol

from .records import CallRecord


class History(Protocol):
    async def start(self) -> None: ...

    def put(self, record: CallRecord) -> None:
        """Queue a finished row; never blocks the request."""

    async def close(self) -> None:
        """Flush what is queued."""


class DiscardHistory:
    """History switched off (`LUNOS_HISTORY=off`): rows are dropped. For benchmarks that
    measure what history costs; a production gateway keeps its history."""

    async def start(self) -> None:
        return None

    def put(self, record: CallRecord) -> None:
        return None

    async def close(self) -> None:
        return None
