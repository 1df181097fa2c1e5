"""What differs between Redshift and PostgreSQL, rendered in one place.

Asset SQL is shared; only COPY, table attributes and the shape of a load differ. Every
statement is built with psycopg2.sql so identifiers are quoted and values are literals, never
text pasted from data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from psycopg2 import sql
from psycopg2.extensions import cursor as Cursor

from etl_assets.loading.formats import Csv, FileFormat, JsonAuto, JsonPaths
from etl_assets.loading.ledger import LEDGER
from etl_assets.resources.warehouse import DEFAULT_ROLE

IDENTIFIER = re.compile(r"\A[a-z_][a-z0-9_]{0,62}\Z")  # \Z: `$` allows a trailing newline


def checked_identifier(name: str) -> sql.Identifier:
    """An identifier that may come from data (S3 keys, schema files): validated, then quoted."""
    if not IDENTIFIER.match(name):
        raise ValueError(f"invalid identifier {name!r}: must match {IDENTIFIER.pattern}")
    return sql.Identifier(name)


def table_ref(schema: str, table: str) -> sql.Identifier:
    checked_identifier(schema)
    checked_identifier(table)
    return sql.Identifier(schema, table)


def serialize(cur: Cursor, dialect: str, name: str) -> None:
    """One writer per `name` (a target table) at a time, until this transaction ends; readers
    are never blocked.

    PostgreSQL: a transaction-scoped advisory lock on the name. Redshift has no advisory locks
    and its LOCK takes ACCESS EXCLUSIVE, which would block readers of the target for the whole
    load; so the ledger, which every load writes and no reader of data reads, is locked
    instead: loads into Redshift publish one at a time (LOCK:
    https://docs.aws.amazon.com/redshift/latest/dg/r_LOCK.html). It must be the transaction's
    first statement: Redshift takes the transaction's snapshot at its first SELECT or DML, not
    at LOCK, so a load that waited for the lock reads what the previous one committed, under
    SNAPSHOT isolation (the default, also on Serverless) as under SERIALIZABLE
    (https://docs.aws.amazon.com/redshift/latest/dg/c_serial_isolation.html).
    """
    if dialect == "redshift":
        cur.execute(sql.SQL("lock {}").format(LEDGER))
    else:
        cur.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"etl_assets:{name}",))


def create_view(ref: sql.Composable, select: str, dialect: str) -> sql.Composed:
    """`create or replace view`; on Redshift late-binding (`with no schema binding`), so the
    view follows table names and never blocks a table's DDL (CREATE VIEW:
    https://docs.aws.amazon.com/redshift/latest/dg/r_CREATE_VIEW.html)."""
    statement = sql.SQL("create or replace view {} as\n{}").format(ref, sql.SQL(select))
    if dialect == "redshift":
        statement = sql.SQL("{}\nwith no schema binding").format(statement)
    return statement


@dataclass(frozen=True)
class TableAttributes:
    """Redshift physical design declared beside an asset; PostgreSQL ignores it."""

    diststyle: str = "AUTO"
    distkey: str | None = None
    sortkey: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # refused where it is declared, not at the first CREATE TABLE on a cluster: a DISTKEY
        # goes with DISTSTYLE KEY (https://docs.aws.amazon.com/redshift/latest/dg/r_CREATE_TABLE_NEW.html)
        if self._diststyle() != "KEY" and self.distkey:
            raise ValueError(
                f"DISTKEY ({self.distkey}) needs DISTSTYLE KEY, not {self.diststyle.upper()}"
            )

    def render(self, dialect: str) -> sql.Composable:
        if dialect != "redshift":
            return sql.SQL("")
        parts = [sql.SQL(" DISTSTYLE {}").format(sql.SQL(self._diststyle()))]
        if self.distkey:
            parts.append(sql.SQL(" DISTKEY ({})").format(checked_identifier(self.distkey)))
        if self.sortkey:
            keys = sql.SQL(", ").join(checked_identifier(k) for k in self.sortkey)
            parts.append(sql.SQL(" SORTKEY ({})").format(keys))
        return sql.Composed(parts)

    def _diststyle(self) -> str:
        style = self.diststyle.upper()
        if style not in ("AUTO", "EVEN", "KEY", "ALL"):
            raise ValueError(f"unknown DISTSTYLE {self.diststyle!r}")
        return style


def redshift_copy(
    target: sql.Composable,
    manifest_url: str,
    file_format: FileFormat,
    bucket: str,
    iam_role: str,
    region: str,
) -> sql.Composed:
    """`COPY ... FROM 's3://...manifest' IAM_ROLE ... <format> REGION ... MANIFEST`.

    A manifest names exactly the object versions this load covers; a plain prefix would also
    pick up any other key that happens to start with it.
    """
    return sql.SQL(
        "COPY {target}{columns} FROM {manifest} IAM_ROLE {role} {fmt} REGION {region} MANIFEST"
        " COMPUPDATE OFF STATUPDATE OFF"
    ).format(
        target=target,
        columns=column_list(file_format),
        manifest=sql.Literal(manifest_url),
        role=copy_role(iam_role),
        fmt=_redshift_format(file_format, bucket),
        region=sql.Literal(region),
    )


def copy_role(iam_role: str) -> sql.Composable:
    """`IAM_ROLE 'arn:...'`, or `IAM_ROLE default`: the role set as the cluster's (or
    workgroup's namespace's) default (https://docs.aws.amazon.com/redshift/latest/dg/copy-parameters-authorization.html)."""
    return sql.SQL(DEFAULT_ROLE) if iam_role == DEFAULT_ROLE else sql.Literal(iam_role)


def column_list(file_format: FileFormat) -> sql.Composable:
    """` (a, b, c)` when a CSV names the columns its fields fill (COPY's column list:
    https://docs.aws.amazon.com/redshift/latest/dg/copy-parameters-column-mapping.html)."""
    if not isinstance(file_format, Csv) or file_format.columns is None:
        return sql.SQL("")
    names = sql.SQL(", ").join(checked_identifier(c) for c in file_format.columns)
    return sql.SQL(" ({})").format(names)


def _redshift_format(file_format: FileFormat, bucket: str) -> sql.Composable:
    if isinstance(file_format, JsonPaths):
        url = f"s3://{bucket}/{file_format.s3_key}"
        return sql.SQL("FORMAT AS JSON {}").format(sql.Literal(url))
    if isinstance(file_format, JsonAuto):
        if file_format.ignore_case:
            return sql.SQL("FORMAT AS JSON 'auto ignorecase'")
        return sql.SQL("FORMAT AS JSON 'auto'")
    if isinstance(file_format, Csv):
        header = " IGNOREHEADER 1" if file_format.header else ""
        return sql.SQL("FORMAT AS CSV" + header + " EMPTYASNULL BLANKSASNULL")
    raise TypeError(f"no Redshift COPY format for {file_format!r}")
