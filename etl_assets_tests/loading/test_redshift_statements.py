"""Issue 10: every statement the Redshift dialect emits, for every format and publish mode,
every domain's DDL, derived tables, views and checks, recorded and held to the Redshift rules
(`redshift_rules`). The rules themselves are shown to catch what they are for."""

import re

import psycopg2
import pytest
import sqlglot
from psycopg2 import sql

from etl_assets import domains
from etl_assets.defs.landing.apply import Landed, _declare
from etl_assets.defs.landing.contract import SchemaFile
from etl_assets.defs.landing.keys import parse_key
from etl_assets.lib.assets import ensure_view
from etl_assets.lib.checks import combine, no_key_drift, rows_match_source, shadow_checks
from etl_assets.loading.errors import LoadError
from etl_assets.loading.formats import Csv, JsonAuto, JsonPaths
from etl_assets.loading.ledger import SourceObject
from etl_assets.loading.loader import LoadStep, LoadTarget, ObjectLoader, rebuild_table
from etl_assets.loading.publish import Append, MergeByKey, Replace, ReplacePartition, Snapshot
from etl_assets.loading.sources import list_objects
from etl_assets.loading.sql_files import SELECT, VIEW, read_sql
from etl_assets.loading.tables import ensure_tables
from etl_assets_tests.loading.recording import ROLE, RecordingWarehouse, Sent
from etl_assets_tests.loading.redshift_rules import manifest_problems, violations

MODES = {
    "replace": Replace(),
    "snapshot": Snapshot(),
    "partition": ReplacePartition("2018-11-01", sql.SQL("a >= 1 and a < 2")),
    "append": Append(),
    "merge": MergeByKey(("a",)),
}
FORMATS = {
    "csv": Csv(),
    "csv columns": Csv(expected_header="a,b", columns=("a", "b")),
    "json auto": JsonAuto(),
    "json auto ignorecase": JsonAuto(ignore_case=True),
    "jsonpaths": JsonPaths.parse("m/paths.json", '{"jsonpaths": ["$.a", "$.b"]}'),
}
BODIES = {Csv: b"a,b\n1,2\n", JsonAuto: b'{"a": 1, "b": 2}\n', JsonPaths: b'{"a": 1, "b": 2}\n'}


def an_empty_warehouse(text: str):
    """Answers as a Redshift with empty tables would: nothing published, no duplicates, no
    NULLs, one row COPYed from the one-record file."""
    if text == "select pg_last_copy_count()":
        return [(1,)]
    if text.startswith("select max(last_modified)"):
        return [(None,)]
    if '"etl_audit"."file_ledger"' in text or " having " in text or "from pg_class" in text:
        return []
    if text.startswith('select contract from "landing"."tables"'):
        return []  # no landing table declared yet
    if text.startswith("select ") and "sys_load" not in text and " limit 0" not in text:
        width = len(sqlglot.parse_one(text, read="redshift").expressions)
        return [(0,) * width]
    return []


@pytest.fixture
def warehouse(redshift):
    RecordingWarehouse.answers = staticmethod(an_empty_warehouse)
    return redshift(dialect="redshift", host="cluster.example", iam_role=ROLE)


def _upload(s3_client, bucket: str, key: str, body: bytes):
    s3_client.put_object(Bucket=bucket, Key=key, Body=body)
    return list_objects(s3_client, bucket, key)


def _record_loads(warehouse, s3_client, bucket: str) -> None:
    checks = combine(rows_match_source(), no_key_drift())
    loader = ObjectLoader(warehouse, s3_client, run_id="run")
    for (mode_name, mode), (format_name, fmt) in (
        (m, f) for m in MODES.items() for f in FORMATS.items()
    ):
        key = f"in/{mode_name}/{format_name.replace(' ', '_')}.data"
        objects = _upload(s3_client, bucket, key, BODIES[type(fmt)])
        result = loader.load(LoadTarget("s", "t", mode), objects, fmt, checks)
        assert result.status == "published", (mode_name, format_name, result.checks)
    csv = _upload(s3_client, bucket, "in/together.csv", BODIES[Csv])
    steps = [LoadStep(LoadTarget("s", "t", m), csv, Csv()) for m in MODES.values()]
    loader.load_together(steps)


def _record_a_refused_copy(warehouse, s3_client, bucket: str, monkeypatch) -> None:
    monkeypatch.setattr("etl_assets.loading.redshift_copy.ERROR_VIEW_WAITS_S", ())

    def answers(text: str):
        if text.startswith("COPY "):
            return psycopg2.InternalError("Load into table 't' failed.")
        if "from sys_load_error_detail" in text:
            return [(f"s3://{bucket}/_staged/x", 2, "a", "int4", "0", "Invalid digit")]
        return an_empty_warehouse(text)

    RecordingWarehouse.answers = staticmethod(answers)
    objects = _upload(s3_client, bucket, "in/refused.csv", BODIES[Csv])
    with pytest.raises(LoadError):
        ObjectLoader(warehouse, s3_client).load(LoadTarget("s", "t"), objects, Csv())
    RecordingWarehouse.answers = staticmethod(an_empty_warehouse)


def _record_domains(warehouse) -> None:
    """Every domain's DDL, derived tables (with their checks) and views, as their assets run
    them."""
    for domain in domains.discover():
        ensure_tables(warehouse, domain.tables)
        for table in domain.tables:
            if (table.sql_dir / f"{table.name}.{SELECT}.sql").exists():
                check = combine(*(c.check for c in shadow_checks(table, from_source=False)))
                select = sql.SQL(read_sql(table.sql_dir, table.name, SELECT))
                rebuild_table(warehouse, LoadTarget(table.schema, table.name), select, check)
        for view in domain.views:
            sql_dir = domain.tables[0].sql_dir
            ensure_view(warehouse, domain.name, view, read_sql(sql_dir, view, VIEW))


def _record_landing_evolution(warehouse) -> None:
    old = SchemaFile.model_validate(
        {
            "table": "people",
            "primary_key": ["id"],
            "columns": [
                {"name": "id", "type": "integer", "nullable": False},
                {"name": "name", "type": "varchar(8)"},
            ],
        }
    )
    new = SchemaFile.model_validate(
        {
            "table": "people",
            "primary_key": ["id"],
            "columns": [
                {"name": "id", "type": "bigint", "nullable": False},
                {"name": "name", "type": "varchar(80)"},
                {"name": "city", "type": "varchar(30)"},
            ],
        }
    )
    key = "landing/dev/schema/people/people.json"
    item = Landed(SourceObject("b", key, "e1", 1), parse_key(key))
    loader = ObjectLoader(warehouse, None, "run", already_recorded=lambda cur, table, objs: set())
    _declare(warehouse, item, old, "run", loader)  # nothing declared yet: create the table

    def declared(text: str):
        if text.startswith('select contract from "landing"."tables"'):
            return [(old.model_dump_json(),)]
        return an_empty_warehouse(text)

    RecordingWarehouse.answers = staticmethod(declared)
    _declare(warehouse, item, new, "run", loader)  # widen and add: rebuilt on Redshift
    RecordingWarehouse.answers = staticmethod(an_empty_warehouse)


def test_every_statement_sent_to_redshift_follows_the_rules(
    warehouse, s3_client, bucket, monkeypatch
) -> None:
    monkeypatch.setattr("etl_assets.loading.loader.VACUUM_MIN_DELETED_ROWS", 1)  # VACUUM too
    _record_loads(warehouse, s3_client, bucket)
    _record_a_refused_copy(warehouse, s3_client, bucket, monkeypatch)
    _record_domains(warehouse)
    _record_landing_evolution(warehouse)
    sent = RecordingWarehouse.sent

    # what was covered: each format and mode's COPY, the domains' DDL, rebuilds and views
    texts = [s.text for s in sent]
    copies = [t for t in texts if t.startswith("COPY ")]
    assert len(copies) >= len(MODES) * len(FORMATS) + len(MODES)
    for fragment in ["'auto ignorecase'", "'auto'", "CSV IGNOREHEADER 1", "/m/paths.json'"]:
        assert any(fragment in c for c in copies), fragment
    assert any('"a", "b") FROM' in c for c in copies)  # a CSV's column list
    for domain in domains.discover():
        for table in domain.tables:
            ddl = re.compile(rf'create table if not exists {table.schema}\."?{table.name}"? ')
            assert any(ddl.match(t) for t in texts), table.qualified
        for view in domain.views:
            assert any(f'create or replace view "{domain.name}"."{view}"' in t for t in texts)
    assert any(t.startswith('insert into "sparkify"."songplays"') for t in texts)
    assert any(t.startswith("vacuum delete only") for t in texts)
    assert any("from sys_load_error_detail" in t for t in texts)
    assert any('alter table "dev"."people__evolved" rename to "people"' in t for t in texts)

    # not yet fixed: a landing evolution rebuilds the table (CREATE, INSERT, DROP, RENAME),
    # losing its grants; it should ADD COLUMN in the transaction and widen a VARCHAR with
    # ALTER COLUMN TYPE outside one. The rule sees it; nothing else may break a rule.
    rebuild = (
        "DROP of a user table (breaks its readers and views; grants are lost):"
        ' drop table "dev"."people"'
    )
    assert violations(sent) == [rebuild]
    assert [p for c in RecordingWarehouse.copies for p in manifest_problems(c["manifest"])] == []
    assert _writers_not_locking_first(sent) == []


def _writers_not_locking_first(sent: list[Sent]) -> list[str]:
    """Every transaction that writes a table other than the ledger starts with the ledger's
    LOCK: Redshift takes the snapshot at the first SELECT or DML, so one taken after the lock
    sees what the previous load committed (issue 10 item 1)."""
    by_connection: dict[int, list[Sent]] = {}
    for statement in sent:
        by_connection.setdefault(statement.connection, []).append(statement)
    writes = re.compile(r'^(copy |insert into (?!"etl_audit")|delete from (?!"etl_audit"))', re.I)
    return [
        statements[0].text
        for statements in by_connection.values()
        if not statements[0].autocommit
        and any(writes.match(s.text) for s in statements)
        and statements[0].text != 'lock "etl_audit"."file_ledger"'
    ]


@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        ("select pg_advisory_xact_lock(hashtext('x'))", "advisory locks"),
        ("select to_regclass('a.b')", "OID alias types"),
        ("insert into a.b values (1) on conflict do nothing", "ON CONFLICT"),
        ("select * from a.b where xmin = pg_current_xact_id()::xid", "system columns"),
        ("create table a.b (x jsonb)", "json/jsonb"),
        ("create index i on a.b (x)", "indexes"),
        ("create table a.b (x varchar(4) check (octet_length(x) <= 4))", "CHECK constraints"),
        ("select * from (values (1), (2)) as v(x)", "VALUES lists"),
        ("select query, filename from stl_load_commits", "STL/STV/SVL"),
        ("select * from svcs_query_summary", "SVCS"),
        ("select * from stv_locks", "STL/STV/SVL"),
        (
            "select trim(file_name), sum(lines_scanned) from sys_load_detail"
            " where query_id = pg_last_copy_id() group by 1",
            "STL ids",
        ),
        ("select * from sys_query_history where query_id = pg_last_query_id()", "STL ids"),
        (
            "select d.file_name from sys_load_detail d join (select pg_last_copy_id() as q) l"
            " on d.query_id = l.q",
            "STL ids",
        ),
        ("select x::text from a.b", "::text"),
        ("truncate a.b", "transaction block"),
        ("vacuum delete only a.b", "transaction block"),
        ("alter table a.b alter column x type varchar(80)", "transaction block"),
        ("create table a.b (x int) DISTSTYLE EVEN DISTKEY (x)", "DISTKEY without DISTSTYLE KEY"),
        ("create or replace view a.v as select * from b", "WITH NO SCHEMA BINDING"),
        (
            "create or replace view a.v as select * from b join a.c on true with no schema binding",
            "unqualified ['b']",
        ),
        (
            "COPY \"t\" FROM 's3://b/m.manifest' IAM_ROLE 'arn:aws:iam::123456789012:role/r'"
            " FORMAT AS CSV REGION 'us-east-1' MANIFEST",
            "COPY clauses",
        ),
        ("select from where", "does not parse"),
        ("-- the ledger\nlock etl_audit.file_ledger", "comment before the statement"),
        ("/* x */ vacuum delete only a.b", "comment before the statement"),
        ("create database landing_dev", "transaction block"),
        ("lock a.b", "LOCK of a table readers read"),
        ('lock "etl_audit"."file_ledger", "a"."b"', "LOCK of a table readers read"),
        ('drop table "a"."b"', "DROP of a user table"),
        ('drop table if exists "a"."b" cascade', "DROP of a user table"),
        (
            "COPY \"t\" FROM 's3://b/m.manifest' IAM_ROLE default FORMAT AS CSV EMPTYASNULL"
            " BLANKSASNULL MAXERROR 100000 REGION 'us-east-1' MANIFEST COMPUPDATE OFF"
            " STATUPDATE OFF",
            "COPY clauses",
        ),
    ],
)
def test_each_rule_catches_what_it_is_for(statement: str, problem: str) -> None:
    found = violations([Sent(statement, 1, autocommit=False)])
    assert any(problem in v for v in found), found


@pytest.mark.parametrize(
    "statement",
    [
        "select pg_last_copy_id()",
        "select pg_last_copy_count()",
        "select trim(file_name), sum(lines_scanned) from sys_load_detail"
        " where left(file_name, 9) = 's3://b/_/' group by 1",
        "select query_id from sys_query_history where query_text = 'pg_last_copy_id()'",
        "select systable_name from a.b",  # names that only contain the prefixes
    ],
)
def test_what_the_system_view_rules_let_through(statement: str) -> None:
    assert violations([Sent(statement, 1, autocommit=False)]) == []


@pytest.mark.parametrize(
    "statement",
    [
        'lock "etl_audit"."file_ledger"',
        'drop table "etl-shadow-0123456789abcdef"',
        "select 1 -- a comment after the statement",
        "insert into a.b /* a comment inside */ select 1",
        "COPY \"t\" FROM 's3://b/m.manifest' IAM_ROLE default FORMAT AS CSV EMPTYASNULL"
        " BLANKSASNULL ACCEPTINVCHARS AS '?' REGION 'us-east-1' MANIFEST COMPUPDATE OFF"
        " STATUPDATE OFF",
        "COPY \"t\" FROM 's3://b/m.manifest' IAM_ROLE default FORMAT AS JSON 'auto'"
        " ACCEPTINVCHARS REGION 'us-east-1' MANIFEST COMPUPDATE OFF STATUPDATE OFF",
    ],
)
def test_what_the_lock_drop_comment_and_copy_rules_let_through(statement: str) -> None:
    assert violations([Sent(statement, 1, autocommit=False)]) == []


def test_what_may_run_outside_a_transaction_passes_there() -> None:
    assert violations([Sent('vacuum delete only "a"."b"', 1, autocommit=True)]) == []
    assert violations([Sent('create database "landing_dev"', 1, autocommit=True)]) == []
    widen = 'alter table "a"."b" alter column "x" type varchar(80)'
    assert violations([Sent(widen, 1, autocommit=True)]) == []
    with_cte = (
        'create or replace view "a"."v" as with recent as (select * from a.b)'
        " select * from recent with no schema binding"
    )
    assert violations([Sent(with_cte, 1, autocommit=False)]) == []
    assert re.search(
        "unqualified", " ".join(violations([Sent(with_cte.replace("a.b", "b"), 1, False)]))
    )


def test_a_manifest_naming_one_url_twice_is_caught() -> None:
    twice = {"entries": [{"url": "s3://b/_staged/l/x-a.json", "mandatory": True}] * 2}
    assert manifest_problems(twice) == ["manifest names s3://b/_staged/l/x-a.json more than once"]
    apart = {
        "entries": [
            {"url": "s3://b/_staged/l/x-a.json", "mandatory": True},
            {"url": "s3://b/_staged/l/y-a.json", "mandatory": True},
        ]
    }
    assert manifest_problems(apart) == []
