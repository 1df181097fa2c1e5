"""The PostgreSQL side of a load: each S3 object's HTTP body streams into COPY FROM STDIN.

Memory stays bounded whatever the file size: psycopg2 pulls fixed-size chunks from the
botocore stream. JSON is parsed by PostgreSQL itself (one line -> one jsonb value, carried
through COPY's CSV mode with control characters that valid JSON never contains raw), then
mapped to columns in SQL with Redshift's semantics: JSONPaths by position, 'auto' by key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import cursor as Cursor

from etl_assets.loading.formats import Csv, FileFormat, JsonAuto, JsonPaths
from etl_assets.loading.json_stream import JsonCopyReader
from etl_assets.loading.ledger import SourceObject

CHUNK_BYTES = 1 << 18
RAW = sql.Identifier("raw_json_lines")
# Raw lines pass through COPY untouched: no quote, no delimiter can occur in valid JSON text.
RAW_COPY = sql.SQL(
    "copy {} (line_no, doc) from stdin with (format csv, quote e'\\x01', delimiter e'\\x02')"
).format(RAW)
TEXT_TYPES = ("character varying", "text", "character")
_COPY_LINE = re.compile(r"COPY \w+, line (\d+)(?:, column (\w+))?")


class LoadError(Exception):
    """A source file that cannot be loaded: names the key, the line, the column and why."""

    def __init__(self, key: str, line: int | None, reason: str, column: str | None = None):
        self.key, self.line, self.column, self.reason = key, line, column, reason
        where = f"line {line}" if line else "file"
        if column:
            where += f", column {column}"
        super().__init__(f"{key}: {where}: {reason}")


@dataclass
class LoadedFile:
    source: SourceObject
    records: int  # records read from the file
    rows: int  # rows it put into the shadow table
    missing_keys: tuple[str, ...] = ()  # expected keys absent from some record
    unknown_keys: tuple[str, ...] = ()  # keys no column maps


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str  # format_type(): 'integer', 'character varying(256)', ...
    base_type: str  # information_schema data_type: 'integer', 'character varying', ...
    max_length: int | None


def fill_from_objects(
    cur: Cursor,
    s3_client,
    shadow: sql.Identifier,
    objects: Sequence[SourceObject],
    file_format: FileFormat,
) -> list[LoadedFile]:
    if isinstance(file_format, Csv):
        return [_copy_csv(cur, s3_client, shadow, obj, file_format) for obj in objects]
    mapping = json_mapping(table_columns(cur, shadow), file_format)
    expected = _expected_keys(mapping, file_format)
    return [_copy_json(cur, s3_client, shadow, obj, mapping, expected) for obj in objects]


def open_body(s3_client, obj: SourceObject):
    """The object's body as a stream, pinned to the listed version by its ETag."""
    response = s3_client.get_object(Bucket=obj.bucket, Key=obj.key, IfMatch=obj.etag)
    return response["Body"]


def table_columns(cur: Cursor, table: sql.Identifier) -> list[Column]:
    cur.execute(
        "select a.attname, format_type(a.atttypid, a.atttypmod),"
        " information_schema._pg_char_max_length(a.atttypid, a.atttypmod)"
        " from pg_attribute a"
        " where a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped"
        " order by a.attnum",
        (table.as_string(cur),),
    )
    return [
        Column(name, data_type, data_type.split("(", 1)[0], max_length)
        for name, data_type, max_length in cur.fetchall()
    ]


Mapping = list[tuple[Column, list[str]]]


def json_mapping(columns: Sequence[Column], file_format: FileFormat) -> Mapping:
    """Each column with the JSON path that feeds it: by position (JSONPaths) or by name."""
    if isinstance(file_format, JsonPaths):
        if len(file_format.paths) != len(columns):
            raise ValueError(
                f"JSONPaths file {file_format.s3_key} has {len(file_format.paths)} expressions"
                f" for {len(columns)} columns"
            )
        return [(c, list(p)) for c, p in zip(columns, file_format.paths, strict=True)]
    if isinstance(file_format, JsonAuto):
        return [(c, [c.name]) for c in columns]
    raise TypeError(f"not a JSON format: {file_format!r}")


def json_select(mapping: Mapping) -> sql.Composed:
    """SELECT mapping each raw jsonb document to the table's columns, in file order."""
    exprs = [_column_expr(column, path) for column, path in mapping]
    return sql.SQL("select {} from {} order by line_no").format(sql.SQL(", ").join(exprs), RAW)


def _text_at(path: list[str]) -> sql.Composed:
    return sql.SQL("(doc #>> {})").format(sql.Literal(path))


def _column_expr(column: Column, path: list[str]) -> sql.Composed:
    if column.base_type in TEXT_TYPES:
        return _text_at(path)  # the insert's assignment checks the width: too long is an error
    return sql.SQL("{}::{}").format(_text_at(path), sql.SQL(column.data_type))


def _expected_keys(mapping: Mapping, file_format: FileFormat) -> frozenset[str]:
    if isinstance(file_format, JsonPaths):
        return file_format.top_level_keys()
    return frozenset(column.name for column, _ in mapping)


def _copy_csv(
    cur: Cursor, s3_client, shadow: sql.Identifier, obj: SourceObject, file_format: Csv
) -> LoadedFile:
    statement = sql.SQL("copy {} from stdin with (format csv, header {})").format(
        shadow, sql.SQL("true" if file_format.header else "false")
    )
    _stream_into(cur, statement, s3_client, obj)
    return LoadedFile(obj, cur.rowcount, cur.rowcount)


def _stream_into(cur: Cursor, statement: sql.Composed, s3_client, obj: SourceObject) -> None:
    body = open_body(s3_client, obj)
    try:
        cur.copy_expert(statement, body, size=CHUNK_BYTES)
    except psycopg2.DataError as error:
        raise _copy_error(obj, error) from error
    finally:
        body.close()


def _stream_json_into(cur: Cursor, s3_client, obj: SourceObject) -> None:
    body = open_body(s3_client, obj)
    reader = JsonCopyReader(body, CHUNK_BYTES)
    try:
        cur.copy_expert(RAW_COPY, reader, size=CHUNK_BYTES)
    except psycopg2.DataError as error:
        raise _copy_error(obj, error, reader.source_line) from error
    finally:
        body.close()


def _copy_json(
    cur: Cursor,
    s3_client,
    shadow: sql.Identifier,
    obj: SourceObject,
    mapping: Mapping,
    expected: frozenset[str],
) -> LoadedFile:
    cur.execute(
        sql.SQL("create temp table {} (line_no bigint not null, doc jsonb not null)").format(RAW)
    )
    _stream_json_into(cur, s3_client, obj)
    records, missing, unknown = _key_profile(cur, obj, expected)
    rows = _insert_mapped(cur, shadow, obj, mapping)
    cur.execute(sql.SQL("drop table {}").format(RAW))
    return LoadedFile(obj, records, rows, missing, unknown)


def _key_profile(
    cur: Cursor, obj: SourceObject, expected: frozenset[str]
) -> tuple[int, tuple[str, ...], tuple[str, ...]]:
    """Records in the file, expected keys some record lacks, keys no column maps."""
    cur.execute(
        sql.SQL("select min(line_no) from {} where jsonb_typeof(doc) <> 'object'").format(RAW)
    )
    (not_object,) = cur.fetchone()
    if not_object is not None:
        raise LoadError(obj.key, not_object, "not a JSON object")
    cur.execute(
        sql.SQL(
            "select k, count(*) from {raw}, jsonb_object_keys(doc) k group by k"
            " union all select null, count(*) from {raw}"
        ).format(raw=RAW)
    )
    counts = dict(cur.fetchall())
    records = counts.pop(None)
    missing = tuple(sorted(k for k in expected if counts.get(k, 0) < records))
    unknown = tuple(sorted(set(counts) - expected))
    return records, missing, unknown


def _insert_mapped(cur: Cursor, shadow: sql.Identifier, obj: SourceObject, mapping: Mapping) -> int:
    cur.execute("savepoint map_json")
    try:
        cur.execute(sql.SQL("insert into {} {}").format(shadow, json_select(mapping)))
    except psycopg2.DataError as error:
        cur.execute("rollback to savepoint map_json")
        raise _locate_bad_value(cur, obj, mapping, error) from error
    return cur.rowcount


def _locate_bad_value(
    cur: Cursor, obj: SourceObject, mapping: Mapping, error: psycopg2.Error
) -> LoadError:
    """Find, in SQL, the first line whose value a column refuses (type or width)."""
    reason = (error.diag.message_primary or str(error)).strip()
    for column, path in mapping:
        value = _text_at(path)
        if column.base_type in TEXT_TYPES:
            if column.max_length is None:
                continue
            refused = sql.SQL("length({}) > {}").format(value, sql.Literal(column.max_length))
        else:
            refused = sql.SQL("not pg_input_is_valid({}, {})").format(
                value, sql.Literal(column.data_type)
            )
        cur.execute(
            sql.SQL("select line_no, {} from {} where {} order by line_no limit 1").format(
                value, RAW, refused
            )
        )
        found = cur.fetchone()
        if found:
            line_no, text = found
            return LoadError(obj.key, line_no, f"{reason} (value {text[:80]!r})", column.name)
    return LoadError(obj.key, None, reason)


def _copy_error(
    obj: SourceObject, error: psycopg2.Error, source_line: Callable[[int], int] | None = None
) -> LoadError:
    """COPY's own error, re-addressed to the file: its line, its column, the parser's reason."""
    context = error.diag.context or ""
    match = _COPY_LINE.search(context)
    line = int(match.group(1)) if match else None
    if line is not None and source_line is not None:
        line = source_line(line)  # COPY counts records; a record may span several file lines
    column = match.group(2) if match and match.group(2) not in ("doc", "line_no") else None
    detail = error.diag.message_detail
    reason = (error.diag.message_primary or str(error)).strip()
    if detail:
        reason = f"{reason}: {detail.strip()}"
    return LoadError(obj.key, line, reason, column)
