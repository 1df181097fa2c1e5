"""Schema files and keys: what is accepted, and every refusal naming the field or segment."""

import json
import re

import pytest

from etl_assets.defs.landing.contract import (
    ContractError,
    SchemaFile,
    canonical_type,
    parse_schema_file,
    plan_evolution,
)
from etl_assets.defs.landing.keys import RoutingError, parse_key
from etl_assets.defs.landing.sample_data import USERS_V1, USERS_V2
from etl_assets.defs.landing.tables import create_statement, evolve_statements


def contract(document: dict) -> SchemaFile:
    return parse_schema_file(json.dumps(document).encode(), document["table"])


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("INTEGER", "integer"),
        ("Double  Precision", "double precision"),
        ("varchar(40)", "varchar(40)"),
        ("decimal(12, 2)", "decimal(12,2)"),
        ("timestamptz", "timestamptz"),
        ("char(2)", "char(2)"),
    ],
)
def test_types_both_dialects_share(text: str, canonical: str) -> None:
    assert canonical_type(text) == canonical


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"columns": [{"name": "a", "type": "jsonb"}]}, "field columns.0.type: unknown type"),
        ({"columns": [{"name": "A b", "type": "integer"}]}, "field columns.0.name"),
        ({"columns": []}, "field columns"),
        ({"primary_key": ["nope"]}, "primary_key names undeclared columns"),
        ({"allowed_operations": ["drop"]}, "field allowed_operations.0"),
        ({"surprise": 1}, "field surprise"),
        ({"columns": [{"name": "v", "type": "varchar(70000)"}]}, "varchar(n) takes 1 <= n <="),
        # Redshift's CHAR holds at most 4,096 bytes
        ({"columns": [{"name": "v", "type": "char(65535)"}]}, "char(n) takes 1 <= n <= 4096"),
        ({"columns": [{"name": "v", "type": "char(4097)"}]}, "char(n) takes 1 <= n <= 4096"),
        # names the warehouse has already on every table
        ({"columns": [{"name": "xmin", "type": "integer"}]}, "'xmin' is a system column"),
        ({"columns": [{"name": "ctid", "type": "integer"}]}, "'ctid' is a system column"),
        # `$` would let a trailing newline through
        ({"columns": [{"name": "name\n", "type": "integer"}]}, "field columns.0.name"),
        ({"table": "users\n"}, "field table"),
        ({"primary_key": ["user_id", "user_id"]}, "primary_key names a column twice"),
        (
            {"columns": [{"name": f"c{i}", "type": "integer"} for i in range(1601)]},
            "field columns: List should have at most 1600 items",
        ),
    ],
)
def test_an_invalid_schema_file_names_the_field(change: dict, reason: str) -> None:
    with pytest.raises(ContractError, match=re.escape(reason)):
        contract({**USERS_V1, **change})


def test_a_contract_too_large_to_register_or_nested_too_deep_is_refused() -> None:
    """1,600 columns pass the column limit, but their contract would overflow the registry's
    varchar(65535); a 100,000-deep document overflows the parser's recursion."""
    wide = {
        "table": "wide",
        "columns": [{"name": f"column_{i:04d}_{'x' * 40}", "type": "integer"} for i in range(1600)],
        "allowed_operations": ["append"],
    }
    with pytest.raises(ContractError, match="at most 65535"):
        contract(wide)
    with pytest.raises(ContractError, match="nested too deep"):
        parse_schema_file(b"[" * 100_000 + b"]" * 100_000, "users")


def test_not_json_and_a_table_other_than_the_key_are_refused() -> None:
    with pytest.raises(ContractError, match="not JSON"):
        parse_schema_file(b"{oops", "users")
    with pytest.raises(ContractError, match="declares 'users' but the key's table is 'people'"):
        parse_schema_file(json.dumps(USERS_V1).encode(), "people")


def test_evolution_adds_nullable_columns_and_widens() -> None:
    changes = plan_evolution(contract(USERS_V1), contract(USERS_V2))
    assert [(c.kind, c.column.name) for c in changes] == [("widen", "name"), ("add", "city")]


@pytest.mark.parametrize(
    ("columns", "reason"),
    [
        (
            [{"name": "user_id", "type": "integer", "nullable": False}],
            "column name would be dropped",
        ),
        (
            [
                {"name": "user_id", "type": "smallint", "nullable": False},
                {"name": "name", "type": "varchar(20)", "nullable": False},
                {"name": "level", "type": "varchar(8)"},
            ],
            "user_id: integer -> smallint narrows",
        ),
        (
            [
                {"name": "user_id", "type": "integer", "nullable": False},
                {"name": "name", "type": "varchar(10)", "nullable": False},
                {"name": "level", "type": "varchar(8)"},
            ],
            "name: varchar(20) -> varchar(10) narrows",
        ),
        (
            [*USERS_V1["columns"], {"name": "age", "type": "integer", "nullable": False}],
            "new column age must be nullable",
        ),
    ],
)
def test_evolution_that_would_lose_data_is_refused_with_the_reason(columns, reason) -> None:
    with pytest.raises(ContractError, match=re.escape(reason)):
        plan_evolution(contract(USERS_V1), contract({**USERS_V1, "columns": columns}))


def test_ddl_renders_declared_types_nullability_and_key(stack) -> None:
    import psycopg2

    conn = psycopg2.connect(stack.dsn())
    rendered = create_statement("dev", "users", contract(USERS_V1)).as_string(conn)
    assert rendered == (
        'create table "dev"."users" ("user_id" integer not null, "name" varchar(20) not null,'
        ' "level" varchar(8), primary key ("user_id"))'
    )
    current, wanted = contract(USERS_V1), contract(USERS_V2)
    changes = plan_evolution(current, wanted)
    postgres = [
        s.as_string(conn)
        for s in evolve_statements("dev", "users", current, wanted, changes, "postgres")
    ]
    assert postgres == [
        'alter table "dev"."users" alter column "name" type varchar(40)',
        'alter table "dev"."users" add column "city" varchar(30)',
    ]
    redshift = [
        s.as_string(conn)
        for s in evolve_statements("dev", "users", current, wanted, changes, "redshift")
    ]
    assert redshift[0].startswith('create table "dev"."users__evolved" (')
    assert redshift[1:] == [
        'insert into "dev"."users__evolved" ("user_id", "name", "level")'
        ' select "user_id", "name", "level" from "dev"."users"',
        'drop table "dev"."users"',
        'alter table "dev"."users__evolved" rename to "users"',
    ]
    conn.close()


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("landing/dev/append/users", "expected landing/<db>/<action>/<table>/<file>, got 3"),
        ("landing/dev/append/users/x/y.csv", "got 5 segment"),
        ("landing/dev/append//x.csv", "got 4 segment"),
        ("landing/dev/drop/users/x.csv", "unknown action 'drop'"),
        ("landing/prod/append/users/x.csv", "'prod' is not in ETL_LANDING_DATABASES"),
        ("landing/etl_audit/append/users/x.csv", "reserved"),
        ("landing/sparkify/append/users/x.csv", "reserved"),
        ("landing/landing/append/users/x.csv", "reserved"),
        ('landing/dev/append/us"ers/x.csv', "table 'us\"ers' is not an identifier"),
        ("landing/dev/append/users;drop/x.csv", "not an identifier"),
        ("landing/dev/append/usérs/x.csv", "not an identifier"),
        ("landing/dev/append/my users/x.csv", "not an identifier"),
        ("landing/Dev/append/users/x.csv", "db 'Dev' is not an identifier"),
        ("landing/dev/append/users\n/x.csv", "table 'users\\n' is not an identifier"),
    ],
)
def test_a_key_that_cannot_be_routed_names_the_segment(key: str, reason: str) -> None:
    with pytest.raises(RoutingError, match=re.escape(reason)):
        parse_key(key)


def test_keys_route_to_db_action_table(monkeypatch) -> None:
    monkeypatch.setenv("ETL_LANDING_DATABASES", "dev, analytics")
    routed = parse_key("landing/analytics/upsert/orders/2026-11-22 orders.csv")
    assert (routed.db, routed.action, routed.table, routed.qualified) == (
        "analytics",
        "upsert",
        "orders",
        "analytics.orders",
    )
