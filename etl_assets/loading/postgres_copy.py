"""The PostgreSQL side of a load: each S3 object's HTTP body streams into COPY FROM STDIN.

Memory stays bounded whatever the file size: psycopg2 pulls fixed-size chunks from the
botocore stream (CSV passes through untouched; JSON is mapped to rows on the way by
`JsonRowReader`). PostgreSQL's own input functions check every value against its column type
and width; their errors are re-addressed to the file's key, line and column.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psycopg2
from botocore.exceptions import ClientError
from psycopg2 import sql
from psycopg2.extensions import cursor as Cursor

from etl_assets.loading.csv_stream import CountingReader, CsvHeaderReader, DateFields
from etl_assets.loading.dialect import column_list
from etl_assets.loading.errors import LoadError, without_values
from etl_assets.loading.formats import Csv, FileFormat, JsonAuto, JsonPaths
from etl_assets.loading.json_stream import JsonRowReader
from etl_assets.loading.ledger import SourceObject
from etl_assets.loading.progress import ProgressBody, Report, with_progress
from etl_assets.loading.tables import BYTE_CHECK, FINITE_CHECK, SINGLE_BYTE_CHECK

if TYPE_CHECKING:
    from etl_assets.loading.json_arrow import ArrowRows

CHUNK_BYTES = 1 << 18
JSON_CHUNK_BYTES = 1 << 22  # what the fast path parses at once (of 1, 2, 4, 8 MB: the fastest)
_COPY_LINE = re.compile(r"COPY [\w-]+, line (\d+)(?:, column (\w+))?")
# a row COPY refuses: a value its column refuses, or a constraint (NOT NULL, CHECK) it breaks
ROW_ERRORS = (psycopg2.DataError, psycopg2.IntegrityError)

__all__ = ["LoadError", "LoadedFile", "fill_from_objects"]


@dataclass
class LoadedFile:
    source: SourceObject
    records: int  # records read from the file
    rows: int  # rows it put into the shadow table
    missing_keys: tuple[str, ...] = ()  # expected keys absent from some record
    unknown_keys: tuple[str, ...] = ()  # keys no column maps


def fill_from_objects(
    cur: Cursor,
    s3_client,
    shadow: sql.Identifier,
    objects: Sequence[SourceObject],
    file_format: FileFormat,
    report: Report | None = None,
) -> list[LoadedFile]:
    """`report`: told how far each large file has streamed (see `progress`)."""
    if isinstance(file_format, Csv):
        dated = _dated_fields(cur, shadow, file_format)
        return [
            _copy_csv(cur, s3_client, shadow, obj, file_format, report, dated) for obj in objects
        ]
    columns = described_columns(cur, shadow)
    paths = json_paths([name for name, _ in columns], file_format)
    expected = frozenset(path[0] for path in paths)
    ignore_case = isinstance(file_format, JsonAuto) and file_format.ignore_case
    # imported here: pyarrow adds ~75 MB to a process, which CSV loads do not need
    from etl_assets.loading.json_arrow import ArrowRows

    fast = ArrowRows.for_columns(paths, [type_oid for _, type_oid in columns], ignore_case)
    return [
        _copy_json(cur, s3_client, shadow, obj, paths, expected, ignore_case, fast, report)
        for obj in objects
    ]


def open_body(s3_client, obj: SourceObject):
    """The object's body as a stream, pinned to the listed version by its ETag."""
    try:
        response = s3_client.get_object(Bucket=obj.bucket, Key=obj.key, IfMatch=obj.etag)
    except ClientError as error:
        raise changed_since_listed(error, obj) from error
    return response["Body"]


def changed_since_listed(error: ClientError, obj: SourceObject) -> Exception:
    """S3 refusing the listed ETag (412) or the key (404): that version is gone, so this
    load cannot be of it; its successor, if any, is a version of its own and loads on its
    own. Any other S3 error (access, throttling) is returned as it is."""
    code = error.response.get("Error", {}).get("Code", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in ("PreconditionFailed", "NoSuchKey", "404") or status in (404, 412):
        return LoadError(
            obj.key,
            None,
            f"version {obj.etag} is no longer in the bucket (the object was overwritten or"
            " deleted after it was listed); a new version loads in a run of its own",
        )
    return error


def table_columns(cur: Cursor, relation: sql.Composable) -> list[str]:
    return [column[0] for column in _describe(cur, relation)]


def described_columns(cur: Cursor, relation: sql.Composable) -> list[tuple[str, int]]:
    """The relation's columns (name, type OID), in order, without a catalog query either
    dialect lacks (Redshift has no `regclass`): what a query of no rows describes."""
    return [(column[0], column[1]) for column in _describe(cur, relation)]  # name, type_code


def _describe(cur: Cursor, relation: sql.Composable) -> Sequence[Sequence]:
    cur.execute(sql.SQL("select * from {} limit 0").format(relation))
    return cur.description


def json_paths(columns: Sequence[str], file_format: FileFormat) -> list[tuple[str, ...]]:
    """The JSON path feeding each column: by position (JSONPaths) or by name ('auto')."""
    if isinstance(file_format, JsonPaths):
        if len(file_format.paths) != len(columns):
            raise LoadError(
                file_format.s3_key,
                None,
                f"the JSONPaths file has {len(file_format.paths)} expressions for"
                f" {len(columns)} columns",
            )
        return list(file_format.paths)
    if isinstance(file_format, JsonAuto):
        return [(name,) for name in columns]  # ignore_case is applied by the reader
    raise TypeError(f"not a JSON format: {file_format!r}")


_DATED_TYPES = {1082: "date", 1114: "timestamp", 1184: "timestamptz"}  # pg_type OIDs


def _dated_fields(
    cur: Cursor, relation: sql.Composable, file_format: Csv
) -> dict[int, tuple[str, str]]:
    """The CSV's fields that fill a date or timestamp column: index -> (column, kind)."""
    types = dict(described_columns(cur, relation))
    order = file_format.columns or list(types)
    return {
        index: (name, _DATED_TYPES[types[name]])
        for index, name in enumerate(order)
        if types.get(name) in _DATED_TYPES
    }


def _copy_csv(
    cur: Cursor,
    s3_client,
    shadow: sql.Identifier,
    obj: SourceObject,
    file_format: Csv,
    report: Report | None,
    dated: dict[int, tuple[str, str]],
) -> LoadedFile:
    statement = sql.SQL("copy {}{} from stdin with (format csv)").format(
        shadow, column_list(file_format)
    )
    body = with_progress(open_body(s3_client, obj), obj, report)
    try:
        if file_format.header:
            reader = CsvHeaderReader(
                body,
                obj.key,
                file_format.expected_header,
                CHUNK_BYTES,
                file_format.empty_ok,
                DateFields(dated) if dated else None,
            )
            first_data_line = 2
        else:
            dates = DateFields(dated) if dated else None
            reader, first_data_line = CountingReader(body, obj.key, dates=dates), 1
        if isinstance(body, ProgressBody):
            body.records = lambda: reader.data_lines
        cur.copy_expert(statement, reader, size=CHUNK_BYTES)
    except psycopg2.Error as error:
        if reader.error is not None:
            raise reader.error from None
        if isinstance(error, ROW_ERRORS):
            raise _copy_error(obj, error, lambda line: line + first_data_line - 1) from error
        raise
    finally:
        body.close()
    return LoadedFile(obj, reader.data_lines, cur.rowcount)


def _copy_json(
    cur: Cursor,
    s3_client,
    shadow: sql.Identifier,
    obj: SourceObject,
    paths: list[tuple[str, ...]],
    expected: frozenset[str],
    ignore_case: bool,
    fast: ArrowRows | None,
    report: Report | None,
) -> LoadedFile:
    body = with_progress(open_body(s3_client, obj), obj, report)
    reader = JsonRowReader(body, obj.key, paths, JSON_CHUNK_BYTES, ignore_case, fast)
    if isinstance(body, ProgressBody):
        body.records = lambda: reader.records
    try:
        cur.copy_expert(sql.SQL("copy {} from stdin").format(shadow), reader, size=JSON_CHUNK_BYTES)
    except psycopg2.Error as error:
        if reader.error is not None:
            raise reader.error from None
        if isinstance(error, ROW_ERRORS):
            raise _copy_error(obj, error, reader.source_line) from error
        raise
    finally:
        reader.close()
        body.close()
    if reader.records == 0:  # an empty daily file would publish nothing for its day
        raise LoadError(obj.key, None, "empty file (no JSON records)")
    missing, unknown = reader.missing_and_unknown(expected)
    return LoadedFile(obj, reader.records, cur.rowcount, missing, unknown)


def _copy_error(
    obj: SourceObject, error: psycopg2.Error, source_line: Callable[[int], int]
) -> LoadError:
    """COPY's own error, re-addressed to the file: its line, its column, the reason."""
    context = error.diag.context or ""
    match = _COPY_LINE.search(context)
    line = None
    if match:
        copy_line = int(match.group(1))
        if (error.diag.message_primary or "").startswith("unterminated CSV quoted field"):
            # COPY reports where the input ended; the record began that many lines earlier
            copy_line -= context.split(": ", 1)[-1].count("\n")
        line = source_line(max(copy_line, 1))
    column = (match.group(2) if match else None) or error.diag.column_name
    reason = _reason(error)
    not_finite = FINITE_CHECK.match(error.diag.constraint_name or "")
    if not_finite:  # see `tables.relation_as_on_redshift`
        column = not_finite.group(1) + ("…" if not_finite.group(2) else "")
        reason = "NaN or infinity, which the warehouse (Redshift) does not store"
    too_wide = BYTE_CHECK.match(error.diag.constraint_name or "")
    if too_wide:  # see `tables.relation_as_on_redshift`
        column = too_wide.group(2) + ("…" if too_wide.group(3) else "")
        reason = (
            f"value longer than {too_wide.group(1)} bytes in UTF-8 (the warehouse's VARCHAR"
            " and CHAR widths count bytes, not characters)"
        )
    multibyte = SINGLE_BYTE_CHECK.match(error.diag.constraint_name or "")
    if multibyte:  # see `tables.relation_as_on_redshift`
        column = multibyte.group(1) + ("…" if multibyte.group(2) else "")
        reason = (
            "a multibyte character in a CHAR column: the warehouse's (Redshift's) CHAR holds"
            " single-byte characters only (declare it VARCHAR)"
        )
    return LoadError(obj.key, line, reason, column)


def _reason(error: psycopg2.Error) -> str:
    """Why the warehouse refused the row, without the row: its message and detail quote the
    values (`Failing row contains (...)`), and the context the whole line."""
    reason = without_values(error.diag.message_primary or "")
    reason = reason or f"refused by the warehouse (SQLSTATE {error.pgcode})"
    detail = without_values(error.diag.message_detail or "")
    return f"{reason}: {detail}" if detail else reason
