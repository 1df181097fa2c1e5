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


class CountingReader:
    """File-like (`read(size)`) pass-through that counts the lines it passes on, always whole
    lines. Blank lines at the very end of the file are not passed on (COPY would read each as
    a row of NULLs); a line holding only `\\.` is refused with its line."""

    def __init__(self, body, key: str = "", first_line: int = 1) -> None:
        self._body = body
        self._key, self._first_line = key, first_line
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
        self._newlines += text.count(b"\n")
        self._count_records(text)
        self._last_byte = text[-1:]
        return text

    def _count_records(self, text: bytes) -> None:
        if not self._in_quotes and b'"' not in text:  # every break ends a record
            self._records += text.count(b"\n")
            return
        # Inside quotes after a byte iff an odd number of quotes came before it (a doubled
        # quote counts twice): a running count of quotes, vectorized; uint8 wraps, parity holds.
        data = np.frombuffer(text, dtype=np.uint8)
        quotes = np.cumsum(data == _QUOTE, dtype=np.uint8)
        if self._in_quotes:
            quotes += 1
        outside = (quotes & 1) == 0
        self._records += int(np.count_nonzero(outside[data == _BREAK]))
        self._in_quotes = bool(quotes[-1] & 1)


class CsvHeaderReader(CountingReader):
    """The body without its header line; the header is verified before anything is read on."""

    def __init__(
        self,
        body,
        key: str,
        expected_header: str | None,
        chunk_bytes: int,
        empty_ok: bool = False,
    ) -> None:
        super().__init__(body, key, first_line=2)
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
