"""How far a long load has got, told while it streams (the run's log in the UI)."""

from __future__ import annotations

from collections.abc import Callable

from etl_assets.loading.ledger import SourceObject

Report = Callable[[str], None]
MIN_BYTES = 64 << 20  # smaller files load in seconds: nothing to tell
MB = 1 << 20


class ProgressBody:
    """An object's body that reports, at each tenth of the file, the bytes streamed and the
    records the reader has counted so far (`records`, set once the reader exists)."""

    def __init__(self, body, obj: SourceObject, report: Report) -> None:
        self._body, self._obj, self._report = body, obj, report
        self._streamed = 0
        self._step = max(obj.size // 10, 1)
        self._next = self._step
        self.records: Callable[[], int] | None = None

    def read(self, size: int = -1) -> bytes:
        data = self._body.read(size)
        self._streamed += len(data)
        if self._streamed >= self._next:
            self._next += self._step
            self._report(self.line())
        return data

    def line(self) -> str:
        total = self._obj.size
        share = 100 * self._streamed // total if total else 100
        counted = f", {self.records():,} records" if self.records else ""
        return (
            f"{self._obj.key}: {self._streamed / MB:,.0f} of {total / MB:,.0f} MB streamed"
            f" ({share} %){counted}"
        )

    def close(self) -> None:
        self._body.close()


def with_progress(body, obj: SourceObject, report: Report | None):
    """`body`, reporting its progress when the file is large enough to take a while."""
    if report is None or obj.size < MIN_BYTES:
        return body
    return ProgressBody(body, obj, report)
