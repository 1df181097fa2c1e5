"""How a source file maps onto a table's columns — the three COPY formats the product uses."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

_PATH_STEP = re.compile(
    r"""\[\s*'([^']*)'\s*\]|\[\s*"([^"]*)"\s*\]|\[\s*(\d+)\s*\]|\.([A-Za-z_][\w]*)"""
)


@dataclass(frozen=True)
class JsonPaths:
    """Newline-delimited JSON mapped to columns by position, as Redshift's JSONPaths file does.

    `s3_key` is where the JSONPaths file lives in the bucket (Redshift reads it there);
    `paths` are its expressions, one per table column, in column order.
    """

    s3_key: str
    paths: tuple[tuple[str, ...], ...]

    @classmethod
    def parse(cls, s3_key: str, document: str) -> JsonPaths:
        expressions = json.loads(document)["jsonpaths"]
        return cls(s3_key, tuple(parse_jsonpath(expr) for expr in expressions))

    def top_level_keys(self) -> frozenset[str]:
        return frozenset(path[0] for path in self.paths)


@dataclass(frozen=True)
class JsonAuto:
    """JSON objects mapped to columns by key name (Redshift `FORMAT AS JSON 'auto'`);
    `ignore_case` matches keys to column names whatever their case ('auto ignorecase')."""

    ignore_case: bool = False


@dataclass(frozen=True)
class Csv:
    """Comma-separated values with one header line; empty fields load as NULL.

    With `expected_header`, a file whose first line differs is refused before any row loads.
    With `columns`, the file's fields fill these columns, in this order (the others load NULL);
    without, the table's columns in table order. A file of a header and no data lines is
    refused, unless `empty_ok` (zero rows: a truncate that empties a landing table).
    """

    header: bool = True
    expected_header: str | None = None
    columns: tuple[str, ...] | None = None
    empty_ok: bool = False


FileFormat = JsonPaths | JsonAuto | Csv


def parse_jsonpath(expression: str) -> tuple[str, ...]:
    """`$['a']['b']`, `$.a.b` or `$.a[0]` -> ('a', 'b') / ('a', '0'); anything else is refused."""
    if not expression.startswith("$"):
        raise ValueError(f"JSONPath {expression!r} must start with '$'")
    steps: list[str] = []
    position = 1
    while position < len(expression):
        match = _PATH_STEP.match(expression, position)
        if match is None:
            raise ValueError(f"JSONPath {expression!r}: cannot parse at character {position}")
        steps.append(next(group for group in match.groups() if group is not None))
        position = match.end()
    if not steps:
        raise ValueError(f"JSONPath {expression!r} selects the whole document, not a field")
    return tuple(steps)
