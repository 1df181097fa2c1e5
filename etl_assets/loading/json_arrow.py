"""The fast path of newline-delimited JSON: whole chunks of lines parsed by pyarrow's JSON
reader against an explicit schema (one field per mapped key, typed from its column), turned
into COPY text rows by Arrow's compute kernels, without a Python object per value.

A chunk is taken only when the result is provably the rows `JsonRowReader` would give:
every line starts an object and holds exactly one (so record numbers stay file lines);
every record carries each mapped key exactly once and no other key (so the drift check's key
sets are known without reading them; pyarrow refuses a key named twice); the text is valid
UTF-8 and holds no NaN/Infinity (which pyarrow would accept and JSON forbids); each value has
its column's JSON type (pyarrow refuses a number for a text column). Anything else returns
None, and the caller reads that chunk line by line, which gives the line-exact message.

Measured on the 1M-event bench (see README): 0.39-0.45x the CSV rate line by line,
~0.6x with this path. msgspec, two worker processes and PostgreSQL-side `json_to_record`
were slower (issue 12).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import partial

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from etl_assets.loading.json_stream import ESCAPED_IN_JSON, NULL

# PostgreSQL type OIDs (pg_type) whose COPY text Arrow writes as the line-by-line reader does;
# any other column type reads a JSON string as text and leaves its parsing to PostgreSQL.
_ARROW_TYPES = {
    16: pa.bool_(),  # boolean
    20: pa.int64(),  # bigint
    21: pa.int64(),  # smallint (its range is PostgreSQL's check)
    23: pa.int64(),  # integer
    700: pa.float64(),  # real
    701: pa.float64(),  # double precision
}
_COPY_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))
# malloc's pool, not Arrow's default mimalloc, which kept ~25 MB more per process for good
# (2 MB chunks, 200 MB of events: peak RSS +80 MB over the imports against +105 MB)
_POOL = pa.system_memory_pool()


class ArrowRows:
    """COPY text rows of a chunk of whole JSON lines, or None when the chunk needs the
    line-by-line reader."""

    def __init__(self, keys: Sequence[str], type_oids: Sequence[int]) -> None:
        self.keys = tuple(keys)
        types = [_ARROW_TYPES.get(oid, pa.string()) for oid in type_oids]
        self._schema = pa.schema(list(zip(keys, types, strict=True)))
        # how a present key with a null value is written, compact or as json.dumps spaces it
        self._null_patterns = [
            (orjson.dumps(key) + b":null", orjson.dumps(key) + b": null") for key in keys
        ]
        self._read_options = pa_json.ReadOptions(use_threads=True, block_size=1 << 19)
        self._parse_options = pa_json.ParseOptions(
            explicit_schema=self._schema,
            unexpected_field_behavior="infer",  # an unknown key shows as an extra column
            newlines_in_values=False,
        )

    @classmethod
    def for_columns(
        cls, paths: Sequence[Sequence[str]], type_oids: Sequence[int], ignore_case: bool
    ) -> ArrowRows | None:
        """The fast path where it applies: one top-level key per column, each key once."""
        keys = [path[0] for path in paths]
        if ignore_case or any(len(path) != 1 for path in paths) or len(set(keys)) != len(keys):
            return None
        return cls(keys, type_oids)

    def rows(self, text: bytes, lines: list[bytes]) -> bytes | None:
        """`text`: the chunk's whole lines, each ending in a newline; `lines`: the same,
        split (without their newlines)."""
        if not _one_object_per_line(lines) or not _utf8(text):
            return None
        try:
            table = pa_json.read_json(
                io.BytesIO(text),
                read_options=self._read_options,
                parse_options=self._parse_options,
                memory_pool=_POOL,
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
        if table.num_rows != len(lines) or table.num_columns != len(self.keys):
            return None  # a line held two objects, or some record a key no column maps
        if not self._every_key_present(table, lines) or not _finite_numbers(table):
            return None
        return self._copy_text(table, escape=ESCAPED_IN_JSON.search(text) is not None)

    def _every_key_present(self, table: pa.Table, lines: list[bytes]) -> bool:
        """A null is an explicit `"key":null` or an absent key (drift): the line of each null
        must name its key. `"key":null` cannot occur inside a string (its quotes would be
        escaped) nor straddle one, so finding it on the record's line proves the key is there.
        A null key written otherwise (escapes, other spacing) sends the chunk to the
        line-by-line reader."""
        for (compact, spaced), column in zip(self._null_patterns, table.columns, strict=False):
            if column.null_count:
                is_null = pc.is_null(column, memory_pool=_POOL)
                null_rows = pc.indices_nonzero(is_null, memory_pool=_POOL).to_numpy().tolist()
                if not all(compact in lines[row] or spaced in lines[row] for row in null_rows):
                    return False
        return True

    def _copy_text(self, table: pa.Table, escape: bool) -> bytes:
        fields = []
        for key in self.keys:
            column = table.column(key)
            if column.type == pa.string():
                if escape:
                    for raw, escaped in _COPY_ESCAPES:
                        column = pc.replace_substring(column, raw, escaped, memory_pool=_POOL)
            else:
                column = pc.cast(column, pa.string(), memory_pool=_POOL)
            fields.append(column)
        join = partial(
            pc.binary_join_element_wise,
            options=pc.JoinOptions(null_handling="replace", null_replacement=NULL),
            memory_pool=_POOL,
        )
        fields[-1] = join(fields[-1], "", "\n")
        joined = join(*fields, "\t")
        return b"".join(_buffer_bytes(chunk) for chunk in joined.chunks)


def _one_object_per_line(lines: list[bytes]) -> bool:
    """Every line starts with '{' (no blank line, no leading space), so each of the lines
    pyarrow turns into at least one row; with as many rows as lines, one each. (Sorting
    bytes puts a line not starting with '{' first or last: a blank one is the smallest.)"""
    return bool(lines) and min(lines)[:1] == b"{" == max(lines)[:1]


def _utf8(text: bytes) -> bool:
    """pyarrow does not check it; orjson and PostgreSQL do."""
    if text.isascii():
        return True
    try:
        text.decode()
    except UnicodeDecodeError:
        return False
    return True


def _finite_numbers(table: pa.Table) -> bool:
    """pyarrow reads NaN and Infinity, which JSON (and the line-by-line reader) refuse."""
    return all(
        pc.all(pc.is_finite(column)).as_py() is not False
        for column in table.columns
        if column.type == pa.float64()
    )


def _buffer_bytes(strings: pa.StringArray) -> bytes:
    """The characters of a string array without nulls: a slice of its data buffer."""
    _, offsets, data = strings.buffers()
    bounds = pa.Array.from_buffers(pa.int32(), strings.offset + len(strings) + 1, [None, offsets])
    start = bounds[strings.offset].as_py()
    end = bounds[strings.offset + len(strings)].as_py()
    return memoryview(data)[start:end].tobytes()
