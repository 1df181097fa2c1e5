"""What happened to every landed file, from the ledger (its retention is the ledger's: all of
it): for `etl-assets files` and the read-only HTTP API."""

from __future__ import annotations

import base64
import json
from datetime import datetime

from psycopg2 import sql

from etl_assets import domains
from etl_assets.defs.landing.keys import ACTION_ORDER
from etl_assets.loading import ledger
from etl_assets.loading.dialect import checked_identifier
from etl_assets.resources.warehouse import WarehouseResource

PAGE = 500
READER_ROLE = "etl_assets_reader"


class BadRequest(ValueError):
    """A question the history cannot answer; the message says why."""


def file_history(
    warehouse: WarehouseResource,
    table: str,
    landed_since: str | None = None,
    cursor: str | None = None,
    limit: int = PAGE,
) -> tuple[list[dict], str | None]:
    """One page of a table's file history, and the cursor of the next page (None: the last)."""
    schema, _, name = table.partition(".")
    try:
        checked_identifier(schema)
        checked_identifier(name)
    except ValueError:
        raise BadRequest(f"table {table!r}: expected <db>.<table>") from None
    since = _time(landed_since, "landed_since") if landed_since else None
    if not 1 <= limit <= PAGE:
        raise BadRequest(f"limit must be between 1 and {PAGE}")
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        if not _ledger_exists(cur):
            return [], None
        rows = ledger.file_history(
            cur, table, since, _decode(cursor), limit + 1, rank_in_second=_LANDING_RANK
        )
    more = len(rows) > limit
    rows = rows[:limit]
    token = _encode(rows[-1]) if more else None
    actions = {d.name: d.key_action for d in domains.discover() if d.key_action}
    return [_json_ready(row, actions) for row in rows], token


# the landing zone's order within one second (`etl_assets.defs.landing.keys.landing_order`),
# read from the key (`landing/<db>/<action>/<table>/<file>`): schema files first, then by file
# name, then by action
_ACTION_RANK = sql.SQL("case split_part(object_key, '/', 3) {} else {} end").format(
    sql.SQL(" ").join(
        sql.SQL("when {} then {}").format(sql.Literal(action), sql.Literal(rank))
        for rank, action in enumerate(ACTION_ORDER)
    ),
    sql.Literal(len(ACTION_ORDER)),
)
_LANDING_RANK = [
    sql.SQL("case split_part(object_key, '/', 3) when 'schema' then 0 else 1 end"),
    sql.SQL("split_part(object_key, '/', 5)"),
    _ACTION_RANK,
]


def _ledger_exists(cur) -> bool:
    cur.execute(
        "select count(*) from information_schema.tables where table_schema = 'etl_audit'"
        " and table_name = 'file_ledger'"
    )
    return cur.fetchone()[0] > 0


def _json_ready(row: dict, actions: dict) -> dict:
    """`actions`: domain -> what a key of that domain asks for (e.g. "append")."""
    key_action = actions.get(row["key"].split("/", 1)[0])
    action = key_action(row["key"]) if key_action else None
    row.pop("position")
    landed, processed = row.pop("landed_at"), row.pop("processed_at")
    return {
        **row,
        "action": action,
        "landed_at": landed.isoformat() if landed else None,
        "processed_at": processed.isoformat() if processed else None,
    }


def _time(text: str, name: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{name} {text!r} is not an ISO time (2026-11-01T00:00)") from None


def _encode(row: dict) -> str:
    landed, *ranks, recorded = row["position"]
    position = [landed.isoformat(), *ranks, recorded.isoformat()]
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


def _decode(token: str | None) -> tuple | None:
    if not token:
        return None
    try:
        landed, *ranks, recorded = json.loads(base64.urlsafe_b64decode(token.encode()))
        if len(ranks) != len(_LANDING_RANK) + 1 or not all(isinstance(r, int | str) for r in ranks):
            raise TypeError("not a position")
        return datetime.fromisoformat(landed), *ranks, datetime.fromisoformat(recorded)
    except (ValueError, TypeError):
        raise BadRequest("cursor is not one this API returned") from None


def ensure_reader_role(warehouse: WarehouseResource) -> None:
    """The local stack's read-only role for the API (the stack trusts local connections, so no
    password): it may read the ledger and nothing else."""
    from etl_assets.loading.tables import ensure_tables

    ensure_tables(warehouse, [])  # the ledger
    role = checked_identifier(READER_ROLE)
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        cur.execute("select count(*) from pg_roles where rolname = %s", (READER_ROLE,))
        if not cur.fetchone()[0]:
            cur.execute(sql.SQL("create role {} login").format(role))
        cur.execute(sql.SQL("grant usage on schema etl_audit to {}").format(role))
        cur.execute(sql.SQL("grant select on etl_audit.file_ledger to {}").format(role))
        conn.commit()
