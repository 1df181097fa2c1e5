"""Where a landed file goes, read from its key: `landing/<db>/<action>/<table>/<file>`."""

from __future__ import annotations

import os
import pkgutil
from dataclasses import dataclass
from datetime import datetime

import etl_assets.defs
from etl_assets.defs.landing.contract import ACTIONS, IDENTIFIER
from etl_assets.loading.ledger import naive_utc

PREFIX = "landing/"
# S3 tells no order within a second (LastModified has whole seconds; a notification's event
# time has milliseconds, but only where a queue is configured): files landed in one second
# apply schema files first, then by file name (name them 01_..., 02_... or by time), and a
# truncate before an append or upsert of the same file name.
ACTION_ORDER = ("schema", "truncate", "append", "upsert")
DEFAULT_DATABASES = "dev"
# schemas a landing db may never be: the audit ledger, PostgreSQL's and Redshift's own
RESERVED = ("etl_audit", "public", "information_schema", "pg_catalog", "pg_internal")


class RoutingError(ValueError):
    """A key the landing zone cannot route; the message says which segment and why."""


@dataclass(frozen=True)
class LandingKey:
    key: str
    db: str
    action: str
    table: str
    file_name: str

    @property
    def qualified(self) -> str:
        return f"{self.db}.{self.table}"


def landing_order(landed: list[tuple[datetime | None, LandingKey]]) -> list[int]:
    """The order (indexes into `landed`) in which files apply: by landing time; within a second
    whose order S3 cannot tell (a listing's LastModified has whole seconds), schema files
    first, then by file name, then ACTION_ORDER. Where every time in a second has its
    milliseconds (a notification's event time), they order that second."""
    times = [naive_utc(at) if at else datetime.min for at, _ in landed]
    coarse = {at.replace(microsecond=0) for at in times if at.microsecond == 0}

    def position(index: int) -> tuple:
        at, route = times[index], landed[index][1]
        second = at.replace(microsecond=0)
        fraction = 0 if second in coarse else at.microsecond
        schema_first = route.action != "schema"
        action = ACTION_ORDER.index(route.action)
        return (second, fraction, schema_first, route.file_name, action, route.key)

    return sorted(range(len(landed)), key=position)


def allowed_databases() -> tuple[str, ...]:
    """`ETL_LANDING_DATABASES`, comma-separated (default `dev`)."""
    text = os.environ.get("ETL_LANDING_DATABASES", DEFAULT_DATABASES)
    return tuple(name.strip() for name in text.split(",") if name.strip())


def domain_schemas() -> frozenset[str]:
    """Every domain's schema (= its folder under `etl_assets/defs/`): never a landing db."""
    return frozenset(m.name for m in pkgutil.iter_modules(etl_assets.defs.__path__) if m.ispkg)


def parse_key(key: str) -> LandingKey:
    """Route a key or raise RoutingError naming the segment and the reason."""
    if not key.startswith(PREFIX):
        raise RoutingError(f"not under {PREFIX}")
    parts = key[len(PREFIX) :].split("/")
    if len(parts) != 4 or not all(parts):
        raise RoutingError(
            f"expected {PREFIX}<db>/<action>/<table>/<file>, got {len(parts)} segment(s)"
            " after the prefix"
        )
    db, action, table, file_name = parts
    for what, value in (("db", db), ("table", table)):
        if not IDENTIFIER.match(value):
            raise RoutingError(f"{what} {value!r} is not an identifier (^[a-z_][a-z0-9_]{{0,62}}$)")
    if action not in ACTIONS:
        raise RoutingError(f"unknown action {action!r}; use one of {', '.join(ACTIONS)}")
    if db in RESERVED or db in domain_schemas():
        raise RoutingError(f"db {db!r} is reserved (it belongs to another domain or the system)")
    if db not in allowed_databases():
        raise RoutingError(
            f"db {db!r} is not in ETL_LANDING_DATABASES ({', '.join(allowed_databases())})"
        )
    return LandingKey(key, db, action, table, file_name)
