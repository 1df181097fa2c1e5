"""CSV object bodies checked on the way into COPY: data lines are counted independently of
COPY (for the rows == lines reconciliation) and the header must be the expected one."""

from __future__ import annotations

import re

import numpy as np

from etl_assets.loading.errors import LoadError

_BOM = b"\xef\xbb\xbf"
_MAX_HEADER_BYTES = 1 << 20


# PostgreSQL reads an unquoted line holding only `\.` as the end of the data, even in CSV
# mode, and silently ignores every line after it; Redshift reads it as a value
_QUOTE, _BREAK = ord('"'), ord("\n")
_END_MARKER = re.compile(rb"(?:^|\n)\\\.\r?(?=\n|$)")


# What a date or timestamp field may hold so that PostgreSQL and Redshift read it alike:
# digits and ISO punctuation. PostgreSQL also reads words ('today', 'epoch', 'now',
# 'infinity', month names) and drops a zone from a `timestamp` ('+05:00', 'Z', 'PST');
# Redshift's default DATEFORMAT and TIMEFORMAT refuse or read them otherwise
# (https://docs.aws.amazon.com/redshift/latest/dg/r_DATEFORMAT_and_TIMEFORMAT_strings.html).
_DATE_BYTES = b'0123456789-:. T"\r'
_ALLOWED = {
    "date": _DATE_BYTES,
    "timestamp": _DATE_BYTES,
    "timestamptz": _DATE_BYTES + b"+Z",
}
_DASH, _COMMA = ord("-"), ord(",")


class DateFields:
    """Checks the date and timestamp fields of CSV text (whole lines) as it streams: a field
    with anything but digits and ISO punctuation, or a `timestamp` with a zone offset, is
    refused with its line and column. Only the lines' structure is computed (vectorized): the
    delimiters outside quoted values, each field's index, the disallowed bytes in each."""

    def __init__(self, fields: dict[int, tuple[str, str]]) -> None:
        """`fields`: field index -> (column, kind: date | timestamp | timestamptz)."""
        self.fields = fields
        self._bad = {
            kind: np.frombuffer(bytes(b not in allowed for b in range(256)), np.bool_)
            for kind, allowed in _ALLOWED.items()
        }
        self._field = 0  # the field the next text starts in (a record may span two texts)

    def check(self, text: bytes, outside: np.ndarray | None) -> tuple[int, str, str] | None:
        """The first refused field as (newlines before it in `text`, column, value kind)."""
        data = np.frombuffer(text, np.uint8)
        delimiters = (data == _COMMA) | (data == _BREAK)
        if outside is not None:
            delimiters &= outside
        ends = np.flatnonzero(delimiters)
        # the text ends its last field without a delimiter (its line break is held back)
        closed = bool(len(data)) and bool(delimiters[-1])
        if not closed:
            ends = np.append(ends, len(data))
        starts = np.empty_like(ends)
        starts[:1], starts[1:] = 0, ends[:-1] + 1
        breaks = np.append(data[ends[:-1]] == _BREAK, closed and data[-1] == _BREAK)
        record = np.cumsum(breaks) - breaks  # the record each field belongs to
        first = np.concatenate(([0], np.flatnonzero(breaks) + 1))[record]
        index = np.arange(len(ends)) - first + np.where(record == 0, self._field, 0)
        found = None
        for position, (column, kind) in self.fields.items():
            chosen = np.flatnonzero(index == position)
            if not len(chosen):
                continue
            bad = self._bad_fields(data, starts[chosen], ends[chosen], kind)
            if len(bad):
                at = int(starts[chosen][bad[0]])
                if found is None or at < found[0]:
                    found = (at, column, kind)
        self._field = self._next_field(closed, breaks, index, outside)
        if found is None:
            return None
        at, column, kind = found
        return text.count(b"\n", 0, at), column, kind

    def _next_field(
        self, closed: bool, breaks: np.ndarray, index: np.ndarray, outside: np.ndarray | None
    ) -> int:
        """The index of the field the next text starts in."""
        if not len(index):
            return self._field
        if closed:
            return 0 if breaks[-1] else int(index[-1]) + 1
        if outside is not None and not outside[-1]:
            return int(index[-1])  # inside a quoted value: the field goes on
        return -1  # the record ended; the next text starts with its held line break

    def _bad_fields(
        self, data: np.ndarray, starts: np.ndarray, ends: np.ndarray, kind: str
    ) -> np.ndarray:
        """Which of these fields hold a disallowed byte (or, but in a timestamptz, a third
        dash: a zone offset after YYYY-MM-DD). Only the fields' own bytes are read."""
        lengths = ends - starts
        nonempty = np.flatnonzero(lengths > 0)
        if not len(nonempty):
            return nonempty
        starts, lengths = starts[nonempty], lengths[nonempty]
        offsets = np.cumsum(lengths) - lengths  # where each field begins among the gathered
        positions = np.repeat(starts - offsets, lengths) + np.arange(int(lengths.sum()))
        gathered = data[positions]
        bad = np.add.reduceat(self._bad[kind][gathered], offsets) > 0
        if kind != "timestamptz":
            bad |= np.add.reduceat(gathered == _DASH, offsets) > 2
        return nonempty[np.flatnonzero(bad)]


class CountingReader:
    """File-like (`read(size)`) pass-through that counts the lines it passes on, always whole
    lines. Blank lines at the very end of the file are not passed on (COPY would read each as
    a row of NULLs); a line holding only `\\.` is refused with its line."""

    def __init__(
        self, body, key: str = "", first_line: int = 1, dates: DateFields | None = None
    ) -> None:
        self._body = body
        self._key, self._first_line = key, first_line
        self._dates = dates
        self._newlines = 0  # physical lines, for the line a refusal names
        self._records, self._in_quotes = 0, False
        self._last_byte = b"\n"
        self._held = b""  # the end of what was read: an unfinished line, or trailing breaks
        self.error: LoadError | None = None

    @property
    def data_lines(self) -> int:
        """Records passed on so far: line breaks outside quoted values (a quoted value may hold
        line breaks; COPY reads it as one row); a last record without a newline counts."""
        return self._records + (0 if self._last_byte == b"\n" else 1)

    def read(self, size: int = -1) -> bytes:
        while True:
            data = self._body.read(size if size > 0 else None)
            if not data:  # the end: an unfinished last line goes on, trailing breaks do not
                tail, self._held = self._held.rstrip(b"\r\n"), b""
                return self._emit(tail)
            out = self._count(data)
            if out:
                return out

    def _count(self, data: bytes) -> bytes:
        data = self._held + data
        cut = data.rfind(b"\n") + 1
        complete, unfinished = data[:cut], data[cut:]
        kept = complete.rstrip(b"\r\n")
        self._held = complete[len(kept) :] + unfinished
        return self._emit(kept)

    def _emit(self, text: bytes) -> bytes:
        if not text:
            return text
        # the regex only where the two bytes occur at all: it alone would cost ~7 ns a byte
        marker = _END_MARKER.search(text) if b"\\." in text else None
        if marker:
            before = self._newlines + text[: marker.start() + 1].count(b"\n")
            self.error = LoadError(
                self._key,
                before + self._first_line,
                "a line holding only \\. (PostgreSQL's end-of-data marker: the lines after it"
                ' would be lost); quote the value ("\\.") if it is data',
            )
            raise self.error  # psycopg2 reports a read() failure as its own: keep ours
        outside = self._count_records(text)
        if self._dates is not None:
            self._check_dates(text, outside)
        self._newlines += text.count(b"\n")
        self._last_byte = text[-1:]
        return text

    def _check_dates(self, text: bytes, outside: np.ndarray | None) -> None:
        if self._dates is None:
            return
        refused = self._dates.check(text, outside)
        if refused is None:
            return
        lines_before, column, kind = refused
        self.error = LoadError(
            self._key,
            self._newlines + lines_before + self._first_line,
            f"not a {kind} both warehouses read alike: only digits and ISO punctuation"
            " (YYYY-MM-DD[ HH:MM:SS[.ffffff]]), no words ('today', 'epoch', month names)"
            + ("" if kind == "timestamptz" else " and no zone offset"),
            column,
        )
        raise self.error

    def _count_records(self, text: bytes) -> np.ndarray | None:
        """Counts the records; returns which bytes are outside quoted values (None: all)."""
        if not self._in_quotes and b'"' not in text:  # every break ends a record
            self._records += text.count(b"\n")
            return None
        # Inside quotes after a byte iff an odd number of quotes came before it (a doubled
        # quote counts twice): a running count of quotes, vectorized; uint8 wraps, parity holds.
        data = np.frombuffer(text, dtype=np.uint8)
        quotes = np.cumsum(data == _QUOTE, dtype=np.uint8)
        if self._in_quotes:
            quotes += 1
        outside = (quotes & 1) == 0
        self._records += int(np.count_nonzero(outside[data == _BREAK]))
        self._in_quotes = bool(quotes[-1] & 1)
        return outside


class CsvHeaderReader(CountingReader):
    """The body without its header line; the header is verified before anything is read on."""

    def __init__(
        self,
        body,
        key: str,
        expected_header: str | None,
        chunk_bytes: int,
        empty_ok: bool = False,
        dates: DateFields | None = None,
    ) -> None:
        super().__init__(body, key, first_line=2, dates=dates)
        self._empty_ok = empty_ok
        self._rest: bytes | None = self._read_header(expected_header, chunk_bytes)

    def read(self, size: int = -1) -> bytes:
        if self._rest is not None:
            data, self._rest = self._rest, None
            out = self._count(data)
            if out:  # empty: no whole line yet (an empty read would end the COPY)
                return out
        return super().read(size)

    def _read_header(self, expected: str | None, chunk_bytes: int) -> bytes:
        buffered = b""
        while b"\n" not in buffered and len(buffered) <= _MAX_HEADER_BYTES:
            chunk = self._body.read(chunk_bytes)
            if not chunk:
                break
            buffered += chunk
        if not buffered.strip():
            raise LoadError(self._key, None, "empty file")
        if b"\n" not in buffered and len(buffered) > _MAX_HEADER_BYTES:
            raise LoadError(self._key, 1, "no line break in the first MB: not a CSV file")
        header, _, rest = buffered.partition(b"\n")
        header_text = header.removeprefix(_BOM).rstrip(b"\r").decode("utf-8", "replace")
        if expected is not None and header_text != expected:
            raise LoadError(self._key, 1, header_mismatch(header_text, expected))
        if not rest.strip() and not self._empty_ok:
            raise LoadError(self._key, 1, "header only, no data lines")
        return rest


def header_mismatch(found: str, expected: str) -> str:
    """Why a first line is not the expected header. It is quoted only when every field is an
    expected column name: a file without its header has a row of data there."""
    names, fields = set(expected.split(",")), found.split(",")
    others = [str(n) for n, field in enumerate(fields, 1) if field not in names]
    if not others:
        return f"header is {found!r}; expected {expected!r}"
    return (
        f"header is not {expected!r}: field {', '.join(others[:10])} of {len(fields)} is no"
        " expected column name (not shown: where a file lacks its header, a row of data is)"
    )
