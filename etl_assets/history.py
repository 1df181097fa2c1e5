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
from etl_assets.loading.dialect import IDENTIFIER, checked_identifier
from etl_assets.resources.warehouse import WarehouseResource

PAGE = 500
# a cursor of ours: base64 of two times and a key of at most 1,024 bytes, 6 characters each
MAX_CURSOR = 12_000
READER_ROLE = "etl_assets_reader"
READER_CONNECTIONS = 10
READER_TIMEOUTS = {"statement_timeout": "30s", "idle_in_transaction_session_timeout": "30s"}


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
    # fullmatch: the pattern's `$` would also match before a final newline
    if not (IDENTIFIER.fullmatch(schema) and IDENTIFIER.fullmatch(name)):
        raise BadRequest(f"table {table[:200]!r}: expected <db>.<table>")
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
    """An ISO time as the ledger keeps times: UTC, without a zone."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{name} {text[:200]!r} is not an ISO time (2026-11-01T00:00)") from None
    try:
        return ledger.naive_utc(moment)
    except OverflowError:  # 0001-01-01T00:00+05:00 is before year 1 in UTC
        raise BadRequest(f"{name} {text[:200]!r} is out of range in UTC") from None


def _encode(row: dict) -> str:
    landed, *ranks, recorded = row["position"]
    position = [landed.isoformat(), *ranks, recorded.isoformat()]
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


def _decode(token: str | None) -> tuple | None:
    if not token:
        return None
    forged = BadRequest("cursor is not one this API returned")
    if len(token) > MAX_CURSOR:
        raise forged
    try:
        landed, *ranks, recorded = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError, RecursionError):  # RecursionError: JSON nested too deep
        raise forged from None
    # after the landed time: schema first (0/1), file name, action's rank, key
    rank_types = (int, str, int, str)
    if len(ranks) != len(rank_types) or not all(
        isinstance(part, kind) for part, kind in zip(ranks, rank_types, strict=True)
    ):
        raise forged
    if not all(isinstance(part, str) for part in (landed, recorded)) or "\0" in ranks[-1]:
        raise forged
    try:
        return _time(landed, "cursor"), *ranks, _time(recorded, "cursor")
    except BadRequest:
        raise forged from None


def ensure_reader_role(warehouse: WarehouseResource) -> None:
    """The local stack's read-only role for the API (the stack trusts local connections, so no
    password): it may read the ledger and nothing else. What PostgreSQL grants every role
    (PUBLIC) cannot be revoked from one role alone, so it is revoked from PUBLIC in this
    database: temporary tables, and the advisory locks loads take (a reader holding one would
    stall every load of its table). The loader connects as the stack's superuser, which
    privileges do not bind."""
    from etl_assets.loading.tables import ensure_tables

    ensure_tables(warehouse, [])  # the ledger
    role = checked_identifier(READER_ROLE)
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        cur.execute("select count(*) from pg_roles where rolname = %s", (READER_ROLE,))
        if not cur.fetchone()[0]:
            cur.execute(sql.SQL("create role {} login").format(role))
        _limit(cur, role)
        cur.execute(sql.SQL("grant usage on schema etl_audit to {}").format(role))
        cur.execute(sql.SQL("grant select on etl_audit.file_ledger to {}").format(role))
        _withhold_from_public(cur)
        conn.commit()


def _limit(cur, role: sql.Identifier) -> None:
    """Bounds on what the reader holds: connections (the loader needs some left), and time
    (an open transaction reading the ledger would hold up a change to it, and the loads
    queued behind that change)."""
    limit = sql.Literal(READER_CONNECTIONS)
    cur.execute(sql.SQL("alter role {} connection limit {}").format(role, limit))
    for setting, value in READER_TIMEOUTS.items():
        cur.execute(
            sql.SQL("alter role {} set {} = {}").format(
                role, sql.Identifier(setting), sql.Literal(value)
            )
        )


def _withhold_from_public(cur) -> None:
    database = sql.Identifier(cur.connection.info.dbname)
    cur.execute(sql.SQL("revoke temporary on database {} from public").format(database))
    cur.execute("revoke create on schema public from public")  # PUBLIC's before PostgreSQL 15
    cur.execute(
        "select oid::regprocedure::text from pg_proc"
        " where pronamespace = 'pg_catalog'::regnamespace and proname like '%advisory%'"
    )
    for (function,) in cur.fetchall():
        name = sql.SQL(function)  # from the catalog: `pg_advisory_xact_lock(bigint)`
        cur.execute(sql.SQL("revoke execute on function {} from public").format(name))
