"""SQL files shipped inside the package, beside the code that runs them.

One meaning per file name: `<table>.ddl.sql` creates a table, `<table>.select.sql` is the SELECT
a derived table is rebuilt from, `<view>.view.sql` is the SELECT a view shows.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

DDL, SELECT, VIEW = "ddl", "select", "view"


@cache
def read_sql(folder: Path, name: str, kind: str) -> str:
    """The statement in `<folder>/<name>.<kind>.sql`, without a trailing semicolon. A DDL
    file's leading comment lines (its header) are not sent: a statement starts with its verb,
    which is what tells what it is (SELECT and view files are sent inside a statement of
    their own, comments and all)."""
    path = folder / f"{name}.{kind}.sql"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: every {kind} statement ships in the package")
    text = path.read_text().strip()
    if kind == DDL:
        text = _LEADING_COMMENTS.sub("", text)
    return text.rstrip(";")


_LEADING_COMMENTS = re.compile(r"\A(?:\s*--[^\n]*\n)+\s*")


def sql_folder(module_file: str) -> Path:
    """The `sql/` folder beside a module (pass `__file__`)."""
    return Path(module_file).resolve().parent / "sql"
