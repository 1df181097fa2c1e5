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

Single-threaded on purpose: on the bench's two cores, pyarrow's threads added CPU time that
PostgreSQL and the S3 reads needed, for no gain. Rates: README, "Performance" (`make bench`
runs both readers side by side).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import partial

import numpy as np
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
_NEWLINE, _OPEN_BRACE = ord("\n"), ord("{")
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
        self._read_options = pa_json.ReadOptions(use_threads=False, block_size=1 << 24)
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

    def rows(self, text: bytes) -> tuple[bytes, int] | None:
        """`text`: whole lines, each ending in a newline. Their COPY text rows and how many
        (one per line), or None."""
        starts, ends = _line_bounds(text)
        if starts is None or not _utf8(text) or _deeper_than(text, len(starts), MAX_FAST_DEPTH):
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
        if table.num_rows != len(starts) or table.num_columns != len(self.keys):
            return None  # a line held two objects, or some record a key no column maps
        if not self._every_key_present(table, text, starts, ends):
            return None
        if not _finite_numbers(table):
            return None
        escape = ESCAPED_IN_JSON.search(text) is not None
        return self._copy_text(table, escape), table.num_rows

    def _every_key_present(
        self, table: pa.Table, text: bytes, starts: np.ndarray, ends: np.ndarray
    ) -> bool:
        """A null is an explicit `"key":null` or an absent key (drift): the line of each null
        must name its key. `"key":null` cannot occur inside a string (its quotes would be
        escaped) nor straddle one, so finding it on the record's line proves the key is there.
        A null key written otherwise (escapes, other spacing) sends the chunk to the
        line-by-line reader."""
        find = text.find
        for (compact, spaced), column in zip(self._null_patterns, table.columns, strict=True):
            if column.null_count:
                is_null = pc.is_null(column, memory_pool=_POOL)
                rows = pc.indices_nonzero(is_null, memory_pool=_POOL).to_numpy()
                for start, end in zip(starts[rows].tolist(), ends[rows].tolist(), strict=True):
                    if find(compact, start, end) < 0 and find(spaced, start, end) < 0:
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


def _line_bounds(text: bytes) -> tuple[np.ndarray | None, np.ndarray]:
    """Where each line starts and ends; no starts unless every line starts with '{' (no
    blank line, no leading space), so that each line gives pyarrow at least one row: with
    as many rows as lines, one each."""
    data = np.frombuffer(text, np.uint8)
    ends = np.flatnonzero(data == _NEWLINE)
    starts = np.empty_like(ends)
    starts[:1], starts[1:] = 0, ends[:-1] + 1
    if not len(ends) or not (data[starts] == _OPEN_BRACE).all():
        return None, ends
    return starts, ends


# pyarrow's JSON parser recurses per nesting level: a value nested 100,000 deep crashed the
# process (SIGSEGV). Mapped records are flat; anything deeper than this goes to the
# line-by-line reader, whose parser (orjson) refuses depths past its limit with an error.
MAX_FAST_DEPTH = 64
_OPENING = np.zeros(256, np.int8)
_OPENING[[ord("["), ord("{")]] = 1
_OPENING[[ord("]"), ord("}")]] = -1


def _deeper_than(text: bytes, lines: int, limit: int) -> bool:
    """Whether any stretch of `text` (`lines` lines, each opening with '{') opens more than
    `limit` brackets ([ and {) beyond those it closes. Brackets inside strings are counted
    too, so this can only overstate the depth (a string of closing brackets before a deep
    value cannot hide it: each rise is measured from the lowest level before it). Flat records
    are cleared by counting alone."""
    if text.count(b"[") + text.count(b"{") - lines <= limit:
        return False
    level = np.cumsum(_OPENING[np.frombuffer(text, np.uint8)], dtype=np.int32)
    if not len(level):
        return False
    rise = level - np.minimum.accumulate(np.minimum(level, 0))
    return int(rise.max()) > limit


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
