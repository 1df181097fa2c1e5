"""The one error a refused source file raises."""

from __future__ import annotations


class LoadError(Exception):
    """A source file that cannot be loaded: names the key, the line, the column and why."""

    def __init__(
        self,
        key: str,
        line: int | None,
        reason: str,
        column: str | None = None,
        place: str | None = None,
    ):
        """`place` replaces 'line N, column C' where a file has no lines (a workbook's
        'sheet S, row R, column C')."""
        self.key, self.line, self.column, self.reason = key, line, column, reason
        where = f"line {line}" if line else "file"
        if column:
            where += f", column {column}"
        super().__init__(f"{key}: {place or where}: {reason}")
