"""The one error a refused source file raises, and the warehouse's reasons without the values
they quote: a refusal is kept in the ledger and served by the API, and must not carry data."""

from __future__ import annotations

import re

# PostgreSQL quotes names and values alike: after these words a quoted text is a name
_NAME_WORDS = frozenset(
    ("column", "relation", "constraint", "table", "type", "encoding", "index", "schema")
)
_QUOTED = re.compile(r'(?:(\w+) )?"[^"]*"')
# `...: "<value>"` ends a message; the value may itself hold quotes
_VALUE_AT_END = re.compile(r': ".*"$', re.DOTALL)
_FAILING_ROW = re.compile(r"Failing row contains \(.*\)\.?", re.DOTALL)
_KEY_VALUES = re.compile(r"(Key \([^)]*\))=\(.*\)", re.DOTALL)
# Redshift's load errors: `Invalid digit, Value 'x', Pos 0, Type: Integer`
_REDSHIFT_VALUE = re.compile(r",? ?Value '.*'(?=,|$)", re.DOTALL)


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


def without_values(message: str) -> str:
    """A PostgreSQL or Redshift message with the row's values taken out, names kept:
    `invalid input syntax for type integer: "abc"` -> `invalid input syntax for type
    integer`; `Failing row contains (77, null).` -> ``; `Key (id)=(7) already exists.` ->
    `Key (id) already exists.`; `value "99999999999" is out of range` -> `value is out of
    range`."""
    message = _VALUE_AT_END.sub("", message)
    message = _FAILING_ROW.sub("", message)
    message = _KEY_VALUES.sub(r"\1", message)
    message = _REDSHIFT_VALUE.sub("", message)
    message = _QUOTED.sub(_name_kept, message)
    return " ".join(message.split())


def _name_kept(quoted: re.Match) -> str:
    word = quoted.group(1)
    if word in _NAME_WORDS:
        return quoted.group(0)
    return word or "value"
