"""Creating a domain's schema and tables from `sql/<domain>/ddl/<table>.sql`."""

from __future__ import annotations

from dataclasses import dataclass, field

from psycopg2 import sql

from etl_assets.loading.ledger import ensure_ledger
from etl_assets.resources.dialect import TableAttributes, table_ref
from etl_assets.resources.warehouse import WarehouseResource
from etl_assets.sql_files import read_sql


@dataclass(frozen=True)
class TableSpec:
    """A warehouse table: where its DDL lives and its Redshift physical design."""

    schema: str
    name: str
    attributes: TableAttributes = field(default_factory=TableAttributes)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def ref(self) -> sql.Identifier:
        return table_ref(self.schema, self.name)

    def create_statement(self, dialect: str) -> sql.Composed:
        ddl = read_sql(self.schema, f"ddl/{self.name}")
        return sql.SQL("{}{}").format(sql.SQL(ddl), self.attributes.render(dialect))


def ensure_tables(warehouse: WarehouseResource, tables: list[TableSpec]) -> None:
    """Create the schemas and tables that do not exist yet, in one transaction."""
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        for schema in sorted({t.schema for t in tables} | {"etl_audit"}):
            cur.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
        for table in tables:
            cur.execute(table.create_statement(warehouse.dialect))
        ensure_ledger(cur)
        conn.commit()
