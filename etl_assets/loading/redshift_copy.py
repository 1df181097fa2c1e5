"""The Redshift side of a load: Redshift pulls the objects from S3 itself, in parallel.

    check each object's first bytes (header, emptiness, JSON keys)  ->  pin each listed version
    (a server-side copy under `_staged/<load_id>/`, refused by S3 if the object changed)  ->
    one COPY from a manifest of the pinned copies  ->  rows per file from SYS_LOAD_DETAIL
    ->  the pinned copies and the manifest are deleted

A COPY that refuses a row is rolled back and its first error, read from
SYS_LOAD_ERROR_DETAIL, raised as the same `LoadError` the PostgreSQL path raises. Only SYS
views are read: STL tables are empty on Redshift Serverless.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import psycopg2
import psycopg2.extensions
from botocore.exceptions import ClientError
from psycopg2 import sql
from psycopg2.extensions import connection as Connection
from psycopg2.extensions import cursor as Cursor

from etl_assets.loading.csv_stream import CountingReader, CsvHeaderReader
from etl_assets.loading.dialect import redshift_copy
from etl_assets.loading.errors import LoadError, without_values
from etl_assets.loading.formats import Csv, FileFormat, JsonAuto
from etl_assets.loading.json_stream import JsonRowReader
from etl_assets.loading.ledger import SourceObject
from etl_assets.loading.postgres_copy import (
    LoadedFile,
    changed_since_listed,
    json_paths,
    table_columns,
)
from etl_assets.loading.retry import is_serialization_failure

SAMPLE_BYTES = 1 << 20  # what is read of each object before the COPY
S3_WORKERS = 16  # concurrent S3 requests (checks, pins, deletes)
STAGED_PREFIX, MANIFEST_PREFIX = "_staged", "_manifests"
ERROR_VIEW_WAITS_S = (0.5, 1.0, 2.0)  # SYS views are filled shortly after the statement
LOAD_VIEW_WAITS_S = (0.5, 1.0, 2.0, 4.0)  # at most 7.5 s, then files are counted here
COUNT_CHUNK_BYTES = 1 << 18
T, R = TypeVar("T"), TypeVar("R")


@dataclass(frozen=True)
class CopyAccess:
    """How Redshift reaches the bucket: the IAM role COPY assumes and the bucket's region."""

    iam_role: str
    region: str


@dataclass(frozen=True)
class Sampled:
    """What the first bytes of one object told: its JSON records when they were the whole
    file (else None), whether a record spans lines, the keys of the records read."""

    records: int | None = None
    multiline: bool = False
    missing_keys: tuple[str, ...] = ()
    unknown_keys: tuple[str, ...] = ()


def fill_from_s3(
    conn: Connection,
    cur: Cursor,
    s3_client,
    staging: sql.Identifier,
    objects: Sequence[SourceObject],
    file_format: FileFormat,
    load: tuple[str, str],
    access: CopyAccess,
) -> tuple[list[LoadedFile], int]:
    """COPY `objects` into `staging` for `load` (the target's "schema/table", the load id);
    returns the files with their records, and the rows COPY loaded."""
    target_path, load_id = load
    columns = [] if isinstance(file_format, Csv) else table_columns(cur, staging)
    sampled = _each(objects, lambda o: sample(s3_client, o, file_format, columns))
    bucket = objects[0].bucket
    staged_prefix = f"{STAGED_PREFIX}/{load_id}/"
    manifest_key = f"{MANIFEST_PREFIX}/{target_path}/{load_id}.manifest"
    try:
        pinned = _each(objects, lambda o: pin(s3_client, o, staged_prefix))
        by_url = {p.url: o for p, o in zip(pinned, objects, strict=True)}
        if len(by_url) != len(pinned):  # one staged copy per listed version, or none loads
            raise RuntimeError(f"two objects of load {load_id} share a staged copy")
        manifest = {"entries": [{"url": p.url, "mandatory": True} for p in pinned]}
        s3_client.put_object(Bucket=bucket, Key=manifest_key, Body=json.dumps(manifest).encode())
        statement = redshift_copy(
            staging,
            f"s3://{bucket}/{manifest_key}",
            file_format,
            bucket,
            access.iam_role,
            access.region,
        )
        try:
            cur.execute(statement)
        except psycopg2.Error as error:
            if _not_the_files(error):
                raise
            conn.rollback()
            refusal = copy_refusal(cur, f"s3://{bucket}/{staged_prefix}", by_url)
            raise (refusal or _copy_failed(objects, error)) from error
        return _counted(cur, s3_client, pinned, objects, sampled, file_format, columns)
    finally:
        _delete(s3_client, bucket, staged_prefix, manifest_key)


def _not_the_files(error: psycopg2.Error) -> bool:
    """A lost connection (no verdict: the versions load in a later run) or a transaction the
    warehouse cancelled for serializability (retried whole): raised as they are. A statement
    timeout is an OperationalError too, but a verdict on this load."""
    if is_serialization_failure(error) or isinstance(error, psycopg2.InterfaceError):
        return True
    canceled = isinstance(error, psycopg2.extensions.QueryCanceledError)
    return isinstance(error, psycopg2.OperationalError) and not canceled


def _copy_failed(objects: Sequence[SourceObject], error: psycopg2.Error) -> LoadError:
    """A COPY refused without a row error (access denied, a missing JSONPaths file, a bad
    manifest, a timeout): every object of the load is refused with the message."""
    keys = ", ".join(o.key for o in objects[:5]) + (" ..." if len(objects) > 5 else "")
    message = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return LoadError(keys, None, f"COPY failed without a row error: {without_values(message)}")


def sample(s3_client, obj: SourceObject, file_format: FileFormat, columns: list[str]) -> Sampled:
    """Refuse what the PostgreSQL path refuses while streaming, from the object's first bytes:
    an empty file, a header other than the expected one, a malformed first record; and
    report the JSON keys of the first records (a renamed key is drift)."""
    head = _first_bytes(s3_client, obj)
    whole = len(head) >= obj.size
    if isinstance(file_format, Csv):
        if file_format.header:
            reader: CountingReader = CsvHeaderReader(
                io.BytesIO(head),
                obj.key,
                file_format.expected_header,
                len(head) + 1,
                file_format.empty_ok,
            )
        elif not head.strip():
            raise LoadError(obj.key, None, "empty file")
        else:
            reader = CountingReader(io.BytesIO(head), obj.key)
        lines = _drain(reader)
        if whole:  # records counted as the PostgreSQL path counts them: quote-aware
            return Sampled(records=reader.data_lines)
        # a quoted value holding a line break: SYS_LOAD_DETAIL's lines would overcount
        return Sampled(multiline=reader.data_lines != lines)
    if not whole:
        head = head[: head.rfind(b"\n") + 1]  # whole lines only
    first = next((line.strip() for line in head.splitlines() if line.strip()), b"")
    multiline = not (first.startswith(b"{") and first.endswith(b"}"))
    paths = json_paths(columns, file_format)
    ignore_case = isinstance(file_format, JsonAuto) and file_format.ignore_case
    reader = JsonRowReader(io.BytesIO(head), obj.key, paths, SAMPLE_BYTES, ignore_case)
    try:
        reader.read()
    except LoadError as error:
        if whole or "file ends inside a JSON value" not in error.reason:
            raise  # a record cut by the sample's end is not the file's fault
    if whole and reader.records == 0:  # an empty daily file would publish nothing for its day
        raise LoadError(obj.key, None, "empty file (no JSON records)")
    missing, unknown = reader.missing_and_unknown(frozenset(p[0] for p in paths))
    return Sampled(reader.records if whole else None, multiline, missing, unknown)


def pin(s3_client, obj: SourceObject, staged_prefix: str) -> SourceObject:
    """A copy of exactly the listed version, which nothing else writes: S3 refuses the copy if
    the object changed since it was listed (CopySourceIfMatch), and a manifest can only name
    keys, not versions."""
    key = staged_prefix + pinned_name(obj)
    source = {"Bucket": obj.bucket, "Key": obj.key}
    try:
        if obj.size < 5 * 1024**3:  # CopyObject's limit; larger ones go multipart
            s3_client.copy_object(
                Bucket=obj.bucket, Key=key, CopySource=source, CopySourceIfMatch=obj.etag
            )
        else:
            s3_client.copy(source, obj.bucket, key, ExtraArgs={"CopySourceIfMatch": obj.etag})
    except ClientError as error:
        raise changed_since_listed(error, obj) from error
    return SourceObject(obj.bucket, key, obj.etag, obj.size, obj.last_modified)


def pinned_name(obj: SourceObject) -> str:
    """Unique within the load and short: a hash of the whole key (two keys with the same base
    name in different folders, as song_data's A/B/C/<track>.json, never share a staged copy),
    then the key's last 100 characters to read; SYS_LOAD_DETAIL keeps 256 characters of a URL
    (s3://<bucket, 63 at most>/_staged/<load id>/<name> stays under that)."""
    digest = hashlib.sha256(obj.key.encode()).hexdigest()[:24]
    base = obj.key.rsplit("/", 1)[-1][-100:]
    return f"{digest}-{base}"


def copy_refusal(
    cur: Cursor, staged_prefix: str, originals: dict[str, SourceObject]
) -> LoadError | None:
    """The refused COPY's first error as a `LoadError` on the original key, or None when
    Redshift recorded no row error (no access to the bucket, a cancelled query)."""
    # https://docs.aws.amazon.com/redshift/latest/dg/SYS_LOAD_ERROR_DETAIL.html
    query = (
        "select trim(file_name), line_number, trim(column_name), trim(column_type),"
        " trim(column_length), trim(error_message) from sys_load_error_detail"
        " where left(file_name, %s) = %s order by start_time, line_number limit 1"
    )
    for wait in (0.0, *ERROR_VIEW_WAITS_S):
        time.sleep(wait)
        cur.execute(query, (len(staged_prefix), staged_prefix))
        row = cur.fetchone()
        if row is not None:
            break
    else:
        return None
    url, line, column, column_type, length, message = row
    original = originals.get(url)
    key = original.key if original else url
    reason = without_values(message)
    if column_type:
        reason += f" (column type {column_type}{f'({length})' if length else ''})"
    return LoadError(key, int(line) if line else None, reason, column or None)


def _counted(
    cur: Cursor,
    s3_client,
    pinned: Sequence[SourceObject],
    objects: Sequence[SourceObject],
    sampled: Sequence[Sampled],
    file_format: FileFormat,
    columns: list[str],
) -> tuple[list[LoadedFile], int]:
    """The rows COPY loaded (`pg_last_copy_count()`) and each file's records: counted from
    its sample when that was the whole file, else the lines COPY scanned in it as
    SYS_LOAD_DETAIL reports them (a CSV header is scanned, not loaded). A file whose records
    span lines (pretty-printed JSON, a quoted CSV value holding a line break) or that the
    view does not show is the remainder when it is the only one, else counted from its
    staged copy as the PostgreSQL path counts it.
    https://docs.aws.amazon.com/redshift/latest/dg/PG_LAST_COPY_COUNT.html"""
    cur.execute("select pg_last_copy_count()")
    copied = int(cur.fetchone()[0])
    need = {p.url for p, seen in zip(pinned, sampled, strict=True) if seen.records is None} - {
        p.url for p, seen in zip(pinned, sampled, strict=True) if seen.multiline
    }
    scanned = lines_scanned(cur, _prefix_of(pinned), need) if need else {}
    header = 1 if isinstance(file_format, Csv) and file_format.header else 0
    records: list[int | None] = []
    for staged, seen in zip(pinned, sampled, strict=True):
        if seen.records is not None:
            records.append(seen.records)
        elif seen.multiline or staged.url not in scanned:
            records.append(None)
        else:
            records.append(max(scanned[staged.url] - header, 0))
    unknown = [i for i, r in enumerate(records) if r is None]
    if len(unknown) == 1:
        records[unknown[0]] = copied - sum(r for r in records if r is not None)
    else:
        for i in unknown:
            records[i] = count_records(s3_client, pinned[i], file_format, columns)
    return [
        LoadedFile(o, n, n, seen.missing_keys, seen.unknown_keys)
        for o, n, seen in zip(objects, records, sampled, strict=True)
    ], copied


def _prefix_of(pinned: Sequence[SourceObject]) -> str:
    """`s3://<bucket>/_staged/<load id>/`: what every staged copy of the load starts with."""
    return pinned[0].url[: pinned[0].url.rindex("/") + 1]


def lines_scanned(cur: Cursor, staged_prefix: str, wanted: set[str]) -> dict[str, int]:
    """Lines COPY scanned per staged file, from SYS_LOAD_DETAIL. Found by the load's own
    `_staged/<load id>/` prefix, not by `query_id = pg_last_copy_id()`: that function returns
    an STL query id, and a SYS view's query_id is another identifier
    (https://docs.aws.amazon.com/redshift/latest/dg/r_STL_QUERY.html,
    https://docs.aws.amazon.com/redshift/latest/dg/PG_LAST_COPY_ID.html). The view is filled
    shortly after the statement: asked again a bounded number of times until it shows every
    wanted file; what it still lacks is left out (the caller counts those files itself).
    https://docs.aws.amazon.com/redshift/latest/dg/SYS_LOAD_DETAIL.html"""
    query = (
        "select trim(file_name), sum(lines_scanned) from sys_load_detail"
        " where left(file_name, %s) = %s group by 1"
    )
    scanned: dict[str, int] = {}
    for wait in (0.0, *LOAD_VIEW_WAITS_S):
        time.sleep(wait)
        cur.execute(query, (len(staged_prefix), staged_prefix))
        scanned = {url: int(lines or 0) for url, lines in cur.fetchall()}
        if wanted <= scanned.keys():
            break
    return scanned


def count_records(s3_client, staged: SourceObject, file_format: FileFormat, columns) -> int:
    """The records of a staged copy, read through in bounded memory and counted as the
    PostgreSQL path counts them: CSV records quote-aware (a quoted value may hold line breaks),
    JSON records however many lines each spans."""
    body = s3_client.get_object(Bucket=staged.bucket, Key=staged.key)["Body"]
    try:
        if isinstance(file_format, Csv):
            reader: CountingReader = (
                CsvHeaderReader(body, staged.key, None, COUNT_CHUNK_BYTES, empty_ok=True)
                if file_format.header
                else CountingReader(body, staged.key)
            )
            _drain(reader)
            return reader.data_lines
        paths = json_paths(columns, file_format)
        ignore_case = isinstance(file_format, JsonAuto) and file_format.ignore_case
        rows = JsonRowReader(body, staged.key, paths, COUNT_CHUNK_BYTES, ignore_case)
        while rows.read(COUNT_CHUNK_BYTES):
            pass
        return rows.records
    finally:
        body.close()


def _drain(reader: CountingReader) -> int:
    """Reads `reader` to its end; returns the lines it passed on (quoted line breaks too)."""
    breaks, read = 0, False
    while chunk := reader.read(COUNT_CHUNK_BYTES):
        breaks, read = breaks + chunk.count(b"\n"), True
    return breaks + read  # the last line passed on has no break


def _delete(s3_client, bucket: str, staged_prefix: str, manifest_key: str) -> None:
    """The load's pinned copies (however many were made) and its manifest."""
    keys = [manifest_key]
    for page in s3_client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=staged_prefix
    ):
        keys += [item["Key"] for item in page.get("Contents", [])]
    for start in range(0, len(keys), 1000):  # DeleteObjects takes 1,000 keys
        batch = [{"Key": k} for k in keys[start : start + 1000]]
        s3_client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})


def _each(items: Sequence[T], work: Callable[[T], R]) -> list[R]:
    """`work` on every item, S3_WORKERS at a time, in order; the first failure is raised."""
    if len(items) <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(S3_WORKERS, len(items))) as pool:
        return list(pool.map(work, items))


def _first_bytes(s3_client, obj: SourceObject) -> bytes:
    if obj.size == 0:
        return b""
    try:
        response = s3_client.get_object(
            Bucket=obj.bucket, Key=obj.key, IfMatch=obj.etag, Range=f"bytes=0-{SAMPLE_BYTES - 1}"
        )
    except ClientError as error:
        raise changed_since_listed(error, obj) from error
    with response["Body"] as body:
        return body.read()
