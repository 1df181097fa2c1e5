"""SQL files shipped inside the package, beside the code that runs them.

One meaning per file name: `<table>.ddl.sql` creates a table, `<table>.select.sql` is the SELECT
a derived table is rebuilt from, `<view>.view.sql` is the SELECT a view shows.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

DDL, SELECT, VIEW = "ddl", "select", "view"


@cache
def read_sql(folder: Path, name: str, kind: str) -> str:
    """The statement in `<folder>/<name>.<kind>.sql`, without a trailing semicolon."""
    path = folder / f"{name}.{kind}.sql"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: every {kind} statement ships in the package")
    return path.read_text().strip().rstrip(";")


def sql_folder(module_file: str) -> Path:
    """The `sql/` folder beside a module (pass `__file__`)."""
    return Path(module_file).resolve().parent / "sql"
