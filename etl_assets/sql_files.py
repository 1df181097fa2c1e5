"""Access to `sql/<domain>/<table>.sql`: one statement per file, file name = table name."""

from __future__ import annotations

from functools import cache
from pathlib import Path

SQL_ROOT = Path(__file__).resolve().parent.parent / "sql"


@cache
def read_sql(domain: str, name: str) -> str:
    text = (SQL_ROOT / domain / f"{name}.sql").read_text()
    return text.strip().rstrip(";")
