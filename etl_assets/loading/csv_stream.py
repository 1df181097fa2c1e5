"""CSV object bodies checked on the way into COPY: data lines are counted independently of
COPY (for the rows == lines reconciliation) and the header must be the expected one."""

from __future__ import annotations

from etl_assets.loading.errors import LoadError

_BOM = b"\xef\xbb\xbf"
_MAX_HEADER_BYTES = 1 << 20


class CountingReader:
    """File-like (`read(size)`) pass-through that counts the lines it passes on. Blank lines
    at the very end of the file are not passed on (COPY would read each as a row of NULLs)."""

    def __init__(self, body) -> None:
        self._body = body
        self._newlines = 0
        self._last_byte = b"\n"
        self._held = b""  # line breaks at the end of what was read: trailing, unless more comes

    @property
    def data_lines(self) -> int:
        """Lines passed on so far; a last line without a newline counts."""
        return self._newlines + (0 if self._last_byte == b"\n" else 1)

    def read(self, size: int = -1) -> bytes:
        while True:
            data = self._body.read(size if size > 0 else None)
            if not data:  # the end: what is held was only trailing line breaks
                self._held = b""
                return b""
            out = self._count(data)
            if out:
                return out

    def _count(self, data: bytes) -> bytes:
        data = self._held + data
        kept = data.rstrip(b"\r\n")
        self._held = data[len(kept) :]
        if kept:
            self._newlines += kept.count(b"\n")
            self._last_byte = kept[-1:]
        return kept


class CsvHeaderReader(CountingReader):
    """The body without its header line; the header is verified before anything is read on."""

    def __init__(self, body, key: str, expected_header: str | None, chunk_bytes: int) -> None:
        super().__init__(body)
        self._key = key
        self._rest: bytes | None = self._read_header(expected_header, chunk_bytes)

    def read(self, size: int = -1) -> bytes:
        if self._rest is not None:
            data, self._rest = self._rest, None
            return self._count(data)
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
            raise LoadError(self._key, 1, f"header is {header_text!r}; expected {expected!r}")
        if not rest.strip():
            raise LoadError(self._key, 1, "header only, no data lines")
        return rest
