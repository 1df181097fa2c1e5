"""The landing zone's registry (`landing.tables`: each landing table's declared contract) and
the DDL a contract renders to, on both dialects."""

from __future__ import annotations

from datetime import UTC, datetime

from psycopg2 import sql
from psycopg2.extensions import cursor as Cursor

from etl_assets.defs.landing.contract import Change, SchemaFile
from etl_assets.defs.landing.keys import LandingKey
from etl_assets.loading.dialect import checked_identifier, table_ref
from etl_assets.loading.ledger import SourceObject
from etl_assets.loading.sql_files import sql_folder
from etl_assets.loading.tables import TableSpec

SCHEMA = "landing"
REGISTRY = TableSpec(SCHEMA, "tables", sql_folder(__file__))


def declared_contract(cur: Cursor, db: str, table: str) -> SchemaFile | None:
    cur.execute(
        sql.SQL("select contract from {} where db = %s and table_name = %s").format(REGISTRY.ref),
        (db, table),
    )
    found = cur.fetchone()
    return SchemaFile.model_validate_json(found[0]) if found else None


def register(cur: Cursor, where: LandingKey, contract: SchemaFile, source: SourceObject) -> None:
    """Record the contract now in force (one row per table)."""
    cur.execute(
        sql.SQL("delete from {} where db = %s and table_name = %s").format(REGISTRY.ref),
        (where.db, where.table),
    )
    cur.execute(
        sql.SQL(
            "insert into {} (db, table_name, contract, schema_key, schema_etag, updated_at)"
            " values (%s, %s, %s, %s, %s, %s)"
        ).format(REGISTRY.ref),
        (
            where.db,
            where.table,
            contract.to_json(),
            source.key,
            source.etag,
            datetime.now(UTC).replace(tzinfo=None),
        ),
    )


def is_declared(warehouse, db: str, table: str) -> bool:
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        return declared_contract(cur, db, table) is not None


def declared_tables(cur: Cursor) -> list[str]:
    cur.execute(sql.SQL("select db, table_name from {} order by 1, 2").format(REGISTRY.ref))
    return [f"{db}.{table}" for db, table in cur.fetchall()]


def table_exists(cur: Cursor, db: str, table: str) -> bool:
    cur.execute(
        "select count(*) from information_schema.tables where table_schema = %s"
        " and table_name = %s",
        (db, table),
    )
    return cur.fetchone()[0] > 0


def create_statement(db: str, table: str, contract: SchemaFile) -> sql.Composed:
    """The contract as CREATE TABLE. Types come from the fixed set both dialects share; a
    primary key is declared (Redshift keeps it as information for the planner, not enforced:
    the blocking key check is what enforces it)."""
    columns = [_column(c.name, c.type, c.nullable) for c in contract.columns]
    if contract.primary_key:
        keys = sql.SQL(", ").join(checked_identifier(k) for k in contract.primary_key)
        columns.append(sql.SQL("primary key ({})").format(keys))
    return sql.SQL("create table {} ({})").format(table_ref(db, table), sql.SQL(", ").join(columns))


def _column(name: str, kind: str, nullable: bool) -> sql.Composed:
    # `kind` is one of contract.canonical_type's spellings: a closed set, safe as SQL text
    not_null = sql.SQL("" if nullable else " not null")
    return sql.SQL("{} {}{}").format(checked_identifier(name), sql.SQL(kind), not_null)


def evolve_statements(
    db: str,
    table: str,
    current: SchemaFile,
    wanted: SchemaFile,
    changes: list[Change],
    dialect: str,
) -> list[sql.Composed]:
    """ALTER statements for PostgreSQL. Redshift cannot ALTER a column's type inside a
    transaction (and cannot widen an integer at all), so a widening rebuilds the table in the
    same transaction: create the new shape beside it, copy the rows, drop, rename
    (https://docs.aws.amazon.com/redshift/latest/dg/r_ALTER_TABLE.html)."""
    ref = table_ref(db, table)
    if dialect == "redshift" and any(c.kind == "widen" for c in changes):
        return _rebuild(db, table, current, wanted)
    statements = []
    for change in changes:
        column = change.column
        if change.kind == "add":
            statements.append(
                sql.SQL("alter table {} add column {}").format(
                    ref, _column(column.name, column.type, True)
                )
            )
        else:
            statements.append(
                sql.SQL("alter table {} alter column {} type {}").format(
                    ref, checked_identifier(column.name), sql.SQL(column.type)
                )
            )
    return statements


def _rebuild(db: str, table: str, current: SchemaFile, wanted: SchemaFile) -> list[sql.Composed]:
    evolved = f"{table}__evolved"
    names = sql.SQL(", ").join(checked_identifier(c.name) for c in current.columns)
    return [
        create_statement(db, evolved, wanted),
        sql.SQL("insert into {} ({}) select {} from {}").format(
            table_ref(db, evolved), names, names, table_ref(db, table)
        ),
        sql.SQL("drop table {}").format(table_ref(db, table)),
        sql.SQL("alter table {} rename to {}").format(
            table_ref(db, evolved), checked_identifier(table)
        ),
    ]
