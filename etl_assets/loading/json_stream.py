"""A JSON object stream, reshaped on the fly into COPY rows `<source line>\\x02<value>\\n`.

Redshift's JSON COPY reads a stream of objects separated by whitespace: one per line in the
event logs, pretty-printed over twelve lines in the real song files. PostgreSQL parses the
values (into jsonb); this reader only finds where each value starts and ends. A line that
starts with '{' and ends with '}' is taken whole (the fast path for newline-delimited JSON);
anything else is scanned character by character until the value closes. Raw newlines cannot
occur inside JSON strings, so joining a value's lines with spaces changes no data.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

FIELD = b"\x02"  # COPY delimiter; neither it nor the quote byte \x01 occurs in valid JSON
_OPEN, _CLOSE, _QUOTE, _BACKSLASH = b"{[", b"}]", ord('"'), ord("\\")


class _ValueScanner:
    """Tracks nesting and string state across the lines of one multi-line value."""

    def __init__(self) -> None:
        self.depth = 0
        self.in_string = False
        self.escaped = False

    def feed(self, line: bytes) -> bool:
        """True when the value is complete at the end of this line."""
        for byte in line:
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                elif byte == _BACKSLASH:
                    self.escaped = True
                elif byte == _QUOTE:
                    self.in_string = False
            elif byte == _QUOTE:
                self.in_string = True
            elif byte in _OPEN:
                self.depth += 1
            elif byte in _CLOSE:
                self.depth -= 1
        return self.depth <= 0 and not self.in_string


class JsonCopyReader:
    """File-like (`read(size)`) view of an object body as COPY rows; memory stays bounded."""

    def __init__(self, body, chunk_bytes: int = 1 << 18) -> None:
        self._body = body
        self._chunk_bytes = chunk_bytes
        self._rows = self._generate()
        self._buffer = bytearray()
        self.records = 0
        # (record number, source line - record number) wherever that offset changes
        self._offsets: list[tuple[int, int]] = [(1, 0)]

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            piece = next(self._rows, None)
            if piece is None:
                break
            self._buffer += piece
        if size < 0:
            size = len(self._buffer)
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out

    def source_line(self, record: int) -> int:
        """The file line where COPY's record number `record` (1-based) starts."""
        index = bisect.bisect_right(self._offsets, (record, float("inf"))) - 1
        return record + self._offsets[index][1]

    def _emit(self, line_no: int, value: bytes) -> bytes:
        self.records += 1
        offset = line_no - self.records
        if offset != self._offsets[-1][1]:
            self._offsets.append((self.records, offset))
        return b"%d" % line_no + FIELD + value + b"\n"

    def _generate(self) -> Iterator[bytes]:
        pending = b""
        line_no = 0
        scanner: _ValueScanner | None = None
        parts: list[bytes] = []
        start = 0
        for data in iter(lambda: self._body.read(self._chunk_bytes), b""):
            lines = (pending + data).split(b"\n")
            pending = lines.pop()
            out = []
            for line in lines:
                line_no += 1
                scanner, start = self._take(line, line_no, scanner, parts, start, out)
            yield b"".join(out)
        out = []
        if pending:
            line_no += 1
            scanner, start = self._take(pending, line_no, scanner, parts, start, out)
        if parts:  # a value still open at the end of the file: PostgreSQL will say why
            out.append(self._emit(start, b" ".join(parts)))
        yield b"".join(out)

    def _take(
        self,
        line: bytes,
        line_no: int,
        scanner: _ValueScanner | None,
        parts: list[bytes],
        start: int,
        out: list[bytes],
    ) -> tuple[_ValueScanner | None, int]:
        text = line.strip()
        if scanner is None:
            if not text:
                return None, start
            if text[0] == 123 and text[-1] == 125:  # '{' ... '}': one whole value
                out.append(self._emit(line_no, text))
                return None, start
            scanner, start = _ValueScanner(), line_no
        parts.append(text)
        if scanner.feed(text):
            out.append(self._emit(start, b" ".join(parts)))
            parts.clear()
            return None, start
        return scanner, start
