"""Table declarations: where a table's DDL lives, its Redshift physical design, and the facts
its checks are generated from (key, not-null columns, references to other tables)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import cursor as Cursor

from etl_assets.loading import ledger
from etl_assets.loading.dialect import TableAttributes, checked_identifier, serialize, table_ref
from etl_assets.loading.sql_files import DDL, read_sql
from etl_assets.resources.warehouse import WarehouseResource

ERROR, WARN = "ERROR", "WARN"


@dataclass(frozen=True)
class Reference:
    """Values of `columns` must exist in `to_table`.`to_column` (NULL is not checked)."""

    columns: tuple[str, ...]
    to_table: str  # "<schema>.<table>"
    to_column: str
    severity: str = ERROR  # WARN: reported, never fails the run


@dataclass(frozen=True)
class TableSpec:
    """A warehouse table: its DDL (`<sql_dir>/<name>.ddl.sql`), Redshift physical design and
    the declarations its checks are generated from."""

    schema: str
    name: str
    sql_dir: Path
    attributes: TableAttributes = field(default_factory=TableAttributes)
    key: tuple[str, ...] = ()  # unique and never null: the table's grain
    not_null: tuple[str, ...] = ()
    references: tuple[Reference, ...] = ()

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def ref(self) -> sql.Identifier:
        return table_ref(self.schema, self.name)

    def create_statement(self, dialect: str) -> sql.Composed:
        ddl = read_sql(self.sql_dir, self.name, DDL)
        return sql.SQL("{}{}").format(sql.SQL(ddl), self.attributes.render(dialect))


def ensure_tables(warehouse: WarehouseResource, tables: Sequence[TableSpec]) -> None:
    """Create the schemas and tables that do not exist yet, in one transaction.

    Two first runs at once would race on `create schema if not exists` (a unique violation in
    the catalog): DDL runs under one lock, and a lost race is retried once.
    """
    for attempt in (1, 2):
        try:
            _create(warehouse, tables)
            return
        except (psycopg2.errors.UniqueViolation, psycopg2.errors.DuplicateObject):
            if attempt == 2:
                raise


def _create(warehouse: WarehouseResource, tables: Sequence[TableSpec]) -> None:
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        if not warehouse.is_redshift:
            serialize(cur, warehouse.dialect, "ddl")
        for schema in sorted({t.schema for t in tables} | {ledger.AUDIT_SCHEMA}):
            create_schema(cur, schema)
        ledger.ensure_ledger(cur)
        for table in tables:
            cur.execute(table.create_statement(warehouse.dialect))
        if not warehouse.is_redshift:
            for schema, name in [(ledger.AUDIT_SCHEMA, "file_ledger")] + [
                (t.schema, t.name) for t in tables
            ]:
                as_on_redshift(cur, schema, name)
        conn.commit()


def create_schema_once(warehouse: WarehouseResource, schema: str) -> None:
    """`create schema if not exists` in a short transaction of its own, under the DDL lock
    (two at once race in the catalog); nothing else waits on that lock meanwhile."""
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        if not warehouse.is_redshift:
            serialize(cur, warehouse.dialect, "ddl")
        create_schema(cur, schema)
        conn.commit()


def create_schema(cur: Cursor, schema: str) -> None:
    cur.execute(sql.SQL("create schema if not exists {}").format(checked_identifier(schema)))


def as_on_redshift(cur: Cursor, schema: str, table: str) -> None:
    """PostgreSQL: refuse the values Redshift refuses and PostgreSQL would take."""
    relation_as_on_redshift(cur, table_ref(schema, table))


def relation_as_on_redshift(cur: Cursor, ref: sql.Identifier) -> None:
    """`as_on_redshift` for any relation, a load's temp shadow included (CREATE TABLE LIKE
    and AS copy no CHECK: a shadow's refusals would otherwise come at publish, lineless)."""
    _widths_in_bytes(cur, ref)
    _finite_values(cur, ref)
    _single_byte_chars(cur, ref)


SINGLE_BYTE_CHECK = re.compile(r"^single_byte_(\w+?)(__[0-9a-f]{8})?$")


def _single_byte_chars(cur: Cursor, ref: sql.Identifier) -> None:
    """One CHECK per CHAR(n) column, named `single_byte_<column>` (COPY's refusal names it):
    Redshift's CHAR holds single-byte characters only, multibyte ones go in VARCHAR
    (https://docs.aws.amazon.com/redshift/latest/dg/r_Character_types.html); NOT VALID:
    published rows are not re-read."""
    cur.execute(
        "select attname from pg_attribute where attrelid = %s::regclass and attnum > 0"
        " and not attisdropped and atttypid = 'bpchar'::regtype",
        (ref.as_string(cur),),
    )
    wanted = {_constraint_name("single_byte", column): column for (column,) in cur.fetchall()}
    present = _constraints(cur, ref, "single_byte")
    for name in wanted.keys() - present:
        column = sql.Identifier(wanted[name])
        cur.execute(
            sql.SQL(
                "alter table {} add constraint {}"
                " check (octet_length({}::text) = char_length({}::text)) not valid"
            ).format(ref, sql.Identifier(name), column, column)
        )


# PostgreSQL reads 'NaN', 'Infinity', '-Infinity' into floats and numerics and 'infinity' into
# dates and timestamps; Redshift's numeric types and datetimes hold no such values
# (https://docs.aws.amazon.com/redshift/latest/dg/r_Numeric_types201.html,
# https://docs.aws.amazon.com/redshift/latest/dg/r_Datetime_types.html)
_NOT_FINITE = {
    "float4": "{} not in ('NaN', 'Infinity', '-Infinity')",
    "float8": "{} not in ('NaN', 'Infinity', '-Infinity')",
    "numeric": "{} not in ('NaN', 'Infinity', '-Infinity')",
    "date": "isfinite({})",
    "timestamp": "isfinite({})",
    "timestamptz": "isfinite({})",
}
_TYPE_NAMES = {
    "real": "float4",
    "double precision": "float8",
    "numeric": "numeric",
    "date": "date",
    "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
}
FINITE_CHECK = re.compile(r"^finite_(\w+?)(__[0-9a-f]{8})?$")


def _finite_values(cur: Cursor, ref: sql.Identifier) -> None:
    """One CHECK per float, numeric, date or timestamp column, named `finite_<column>` (COPY's
    refusal names it), refusing NaN and infinities; NOT VALID: published rows are not re-read."""
    cur.execute(
        "select attname, atttypid::regtype::text from pg_attribute where attrelid = %s::regclass"
        " and attnum > 0 and not attisdropped",
        (ref.as_string(cur),),
    )
    wanted = {
        _constraint_name("finite", column): (column, _TYPE_NAMES[kind])
        for column, kind in cur.fetchall()
        if kind in _TYPE_NAMES
    }
    present = _constraints(cur, ref, "finite")
    for name in wanted.keys() - present:
        column, kind = wanted[name]
        check = sql.SQL(_NOT_FINITE[kind]).format(sql.Identifier(column))
        cur.execute(
            sql.SQL("alter table {} add constraint {} check ({}) not valid").format(
                ref, sql.Identifier(name), check
            )
        )


def _constraints(cur: Cursor, ref: sql.Identifier, prefix: str) -> set[str]:
    """The names of the table's CHECK constraints that start with `<prefix>_`."""
    cur.execute(
        "select conname from pg_constraint where conrelid = %s::regclass and contype = 'c'"
        " and conname like %s",
        (ref.as_string(cur), prefix + "\\_%"),
    )
    return {name for (name,) in cur.fetchall()}


def _constraint_name(prefix: str, column: str) -> str:
    """`<prefix>_<column>`; past PostgreSQL's 63 bytes, the column's first characters and a
    hash of its whole name (two long names sharing a prefix keep a constraint each)."""
    name = f"{prefix}_{column}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha1(column.encode()).hexdigest()[:8]
    return f"{name[:53]}__{digest}"


def widths_in_bytes(cur: Cursor, schema: str, table: str) -> None:
    """PostgreSQL: make every VARCHAR(n) and CHAR(n) column of the table hold at most n bytes,
    as on Redshift, where widths count bytes, not characters
    (https://docs.aws.amazon.com/redshift/latest/dg/r_Character_types.html): a value that fits
    here would otherwise be refused in production. One CHECK per sized column, named
    `bytes_<n>_<column>` (COPY's refusal names it), replaced when the column is widened;
    NOT VALID: rows already published are not re-read."""
    _widths_in_bytes(cur, table_ref(schema, table))


def _widths_in_bytes(cur: Cursor, ref: sql.Identifier) -> None:
    cur.execute(
        "select attname, atttypmod - 4 from pg_attribute where attrelid = %s::regclass"
        " and attnum > 0 and not attisdropped and atttypmod > 4"
        " and atttypid in ('varchar'::regtype, 'bpchar'::regtype)",
        (ref.as_string(cur),),
    )
    wanted = {byte_check_name(column, width): (column, width) for column, width in cur.fetchall()}
    present = _constraints(cur, ref, "bytes")
    for name in present - wanted.keys():
        cur.execute(sql.SQL("alter table {} drop constraint {}").format(ref, sql.Identifier(name)))
    for name in wanted.keys() - present:
        column, width = wanted[name]
        cur.execute(
            sql.SQL(
                "alter table {} add constraint {} check (octet_length({}::text) <= {}) not valid"
            ).format(ref, sql.Identifier(name), sql.Identifier(column), sql.Literal(width))
        )


BYTE_CHECK = re.compile(r"^bytes_(\d+)_(\w+?)(__[0-9a-f]{8})?$")


def byte_check_name(column: str, width: int) -> str:
    return _constraint_name(f"bytes_{width}", column)
