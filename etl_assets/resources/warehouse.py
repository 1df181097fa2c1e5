"""The warehouse resource: one psycopg2 connection factory for two dialects.

`postgres` is the local stack (and any PostgreSQL); `redshift` is production. Everything that
differs between the two is rendered in `etl_assets.loading.dialect`; the SQL shipped beside each
domain is written once in the subset both understand.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg2
import psycopg2.extensions
from dagster import ConfigurableResource
from pydantic import Field

DIALECTS = ("postgres", "redshift")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
DEFAULT_ROLE = "default"  # COPY's `IAM_ROLE default`


def uses_local_stack() -> bool:
    """The embedded local stack unless the environment names a warehouse host."""
    return not os.environ.get("ETL_WAREHOUSE_HOST")


class WarehouseResource(ConfigurableResource):
    """Connection to the warehouse (Amazon Redshift in production, PostgreSQL locally)."""

    dialect: str = Field(default="postgres", description="postgres | redshift")
    host: str = Field(description="Host name of the cluster or server")
    port: int = 5432
    database: str = "postgres"
    user: str = "postgres"
    password: str = Field(default="", description="Set from an EnvVar; never in a file")
    iam_role: str = Field(
        default="", description="Redshift: IAM role ARN that COPY assumes, or 'default'"
    )
    region: str = Field(default="us-east-1", description="Redshift: region of the S3 bucket")
    connect_timeout_s: int = 10
    read_only: bool = Field(default=False, description="Every transaction of the session read-only")

    def model_post_init(self, __context: Any) -> None:
        if self.dialect not in DIALECTS:
            raise ValueError(f"unknown warehouse dialect {self.dialect!r}; use one of {DIALECTS}")
        if self.dialect == "redshift" and not self.read_only:
            check_copy_role(self.iam_role)

    @property
    def is_redshift(self) -> bool:
        return self.dialect == "redshift"

    @contextmanager
    def get_connection(self) -> Iterator[psycopg2.extensions.connection]:
        """A connection in a transaction; the caller commits. Closed (rolled back) on exit."""
        conn = psycopg2.connect(
            host=self.host,
            port=self.port,
            dbname=self.database,
            user=self.user,
            password=self.password or None,
            connect_timeout=self.connect_timeout_s,
            application_name="etl_assets",
        )
        try:
            if self.read_only:  # BEGIN READ ONLY: Redshift has no default_transaction_read_only
                conn.set_session(readonly=True)
            yield conn
        finally:
            conn.close()

    def execute(self, statement: Any, params: Sequence[Any] | dict | None = None) -> None:
        """Run one statement in its own transaction (DDL, housekeeping)."""
        with self.get_connection() as conn, conn.cursor() as cur:
            cur.execute(statement, params)
            conn.commit()

    def query(self, statement: Any, params: Sequence[Any] | dict | None = None) -> list[tuple]:
        with self.get_connection() as conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall()


def check_copy_role(iam_role: str) -> None:
    """Refuse, where the warehouse is configured, a role COPY could not use: the first load
    would otherwise fail on the cluster."""
    if iam_role == DEFAULT_ROLE or ROLE_ARN.match(iam_role):
        return
    what = "is empty" if not iam_role.strip() else f"is {iam_role!r}, not a role ARN"
    raise ValueError(
        f"ETL_REDSHIFT_IAM_ROLE {what}: set it to the ARN of the IAM role Redshift assumes to"
        " read the bucket (arn:aws:iam::<account>:role/<name>), or to 'default' for the role"
        " set as the cluster's or namespace's default"
    )
