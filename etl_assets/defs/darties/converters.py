"""Workbooks -> long CSV files the common loader COPYs (on PostgreSQL and on Redshift alike),
under `_converted/darties/<workbook>.<part>.csv`. The ledger keeps the workbook's own version.

One workbook feeds two tables (its sales rows, its stores rows): the two converters share one
reading of each workbook version, and remember the sums read from each sheet for the
reconciliation check that runs on the loaded rows.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC

import pandas as pd

from etl_assets.defs.darties.workbooks import (
    MEASURES,
    SALES_COLUMNS,
    STORE_COLUMNS,
    Workbook,
    WorkbookError,
    read_workbook,
)
from etl_assets.lib.converters import put_converted
from etl_assets.loading.errors import LoadError
from etl_assets.loading.ledger import SourceObject

MAX_WORKBOOK_BYTES = 32 * 1024 * 1024  # the real ones are 30-80 KB (see xlsx.py's bounds)
SALES_HEADER = ("source_key", "source_kind", "source_rank", "landed_at", *SALES_COLUMNS)
STORES_HEADER = ("source_key", "landed_at", *STORE_COLUMNS.values())
Version = tuple[str, str, str]


class Workbooks:
    """Workbook versions read in this process (the last few), and what each one's sheets
    summed to (kept for more versions: the checks ask after the load)."""

    def __init__(self, keep: int = 4, keep_sums: int = 256) -> None:
        self._read: OrderedDict[Version, Workbook] = OrderedDict()
        self._sums: OrderedDict[Version, dict[tuple[str, str], float]] = OrderedDict()
        self._keep, self._keep_sums = keep, keep_sums
        self._lock = threading.Lock()

    def read(self, s3_client, source: SourceObject) -> Workbook:
        with self._lock:
            if source.version in self._read:
                return self._read[source.version]
        workbook = _read(s3_client, source)
        with self._lock:
            self._read[source.version] = workbook
            self._sums[source.version] = workbook.sheet_sums
            _trim(self._read, self._keep)
            _trim(self._sums, self._keep_sums)
        return workbook

    def sheet_sums(self, version: Version) -> dict[tuple[str, str], float] | None:
        with self._lock:
            return self._sums.get(version)

    def stray_cells(self, version: Version) -> list[str]:
        with self._lock:
            workbook = self._read.get(version)
        return workbook.stray_cells if workbook else []

    def notes(self, version: Version) -> list[str]:
        with self._lock:
            workbook = self._read.get(version)
        return workbook.notes if workbook else []


def _trim(cache: OrderedDict, keep: int) -> None:
    while len(cache) > keep:
        cache.popitem(last=False)


def _read(s3_client, source: SourceObject) -> Workbook:
    if source.size > MAX_WORKBOOK_BYTES:
        raise LoadError(source.key, None, f"{source.size} bytes is too large for a workbook")
    body = s3_client.get_object(Bucket=source.bucket, Key=source.key, IfMatch=source.etag)
    try:
        return read_workbook(body["Body"].read(), source.key.rsplit("/", 1)[-1])
    except WorkbookError as error:
        raise LoadError(source.key, None, error.reason, place=error.where or None) from error


WORKBOOKS = Workbooks()


@dataclass(frozen=True)
class WorkbookToCsv:
    """One part of a workbook (`sales` or `stores`) as CSV; applies on both dialects, since
    neither COPY reads Excel."""

    part: str
    workbooks: Workbooks = WORKBOOKS

    @property
    def header(self) -> tuple[str, ...]:
        return SALES_HEADER if self.part == "sales" else STORES_HEADER

    def applies_to(self, dialect: str) -> bool:
        del dialect
        return True

    def convert(self, s3_client, source: SourceObject) -> SourceObject:
        workbook = self.workbooks.read(s3_client, source)
        rows = _sales_rows(workbook, source) if self.part == "sales" else _store_rows(workbook)
        rows["source_key"], rows["landed_at"] = source.key, _landed_at(source)
        rows["source_kind"], rows["source_rank"] = workbook.name.kind, workbook.name.rank
        body = rows[list(self.header)].to_csv(index=False, lineterminator="\n").encode()
        return put_converted(s3_client, source, body, f".{self.part}.csv")


def _landed_at(source: SourceObject) -> str:
    if source.last_modified is None:
        raise LoadError(source.key, None, "the listing gave no LastModified")
    return source.last_modified.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _sales_rows(workbook: Workbook, source: SourceObject) -> pd.DataFrame:
    rows = workbook.sales.copy()
    if workbook.name.kind == "budget":
        filled = [c for c in MEASURES if c.endswith("_actual") and rows[c].notna().any()]
        if filled:
            raise LoadError(
                source.key,
                None,
                f"a budget workbook carries actuals ({', '.join(filled)}); budget actuals"
                " must be empty",
            )
    rows["month_start"] = pd.to_datetime(rows["month_start"]).dt.strftime("%Y-%m-%d")
    return rows


def _store_rows(workbook: Workbook) -> pd.DataFrame:
    return workbook.stores.copy()
