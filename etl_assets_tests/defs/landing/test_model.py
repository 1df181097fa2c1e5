"""Model-based test of the landing zone: seeded random sequences of schema and data files land
in the bucket, the real landing sensor ticks after each group and its runs apply them; then the
tables and the ledger must equal what a plain-Python reference of the rules
(`etl_assets_tests/landing_model.py`) computes from the same uploads, ordered by the
LastModified values S3 gave them.

Seeds: a few by default; `ETL_MODEL_SEEDS=200` runs seeds 0..199, `ETL_MODEL_SEED=17,42` those
seeds only (`make test-model`)."""

from __future__ import annotations

import json
import math
import os
import time
from datetime import UTC, datetime

import pytest
from dagster import DagsterInstance

from etl_assets_tests.helpers import sensor_tick_and_runs
from etl_assets_tests.landing_model import (
    DB,
    INT_RANGE,
    LOADED,
    MUTANTS,
    NEXT_SECOND,
    REJECTED,
    Col,
    Contract,
    Reference,
    Upload,
    csv_body,
    generate,
    landed_second,
    landing_sort_key,
    mutant,
    outcome,
    with_simulated_times,
)

SENSOR = "landing_upload_sensor"
DEFAULT_SEEDS = (0, 20, 73, 182, 273)


def seeds() -> list[int]:
    chosen = os.environ.get("ETL_MODEL_SEED", "").strip()
    if chosen:
        return [int(s) for s in chosen.split(",") if s.strip()]
    many = os.environ.get("ETL_MODEL_SEEDS", "").strip()
    return list(range(int(many))) if many else list(DEFAULT_SEEDS)


# ---- the reference on its own (no stack): the rules by example --------------------------


def _upload(action: str, name: str, body: bytes, second: int, header=None, rows=None) -> Upload:
    upload = Upload("t", action, name, body, 0, "", header, rows)
    upload.last_modified = datetime(2026, 1, 1, 0, 0, second)
    return upload


def _data(action: str, name: str, header: list[str], rows: list, second: int = 1) -> Upload:
    return _upload(action, name, csv_body(header, rows), second, header, rows)


T = Contract(
    "t",
    (Col("id", "integer", False), Col("note", "varchar(4)"), Col("name", "varchar(6)", False)),
    ("id",),
    ("append", "truncate", "upsert", "schema"),
)


def _schema(contract: Contract, name: str = "s.json", second: int = 0) -> Upload:
    return _upload("schema", name, json.dumps(contract.document()).encode(), second)


def _statuses(reference: Reference) -> list[str]:
    return [reference.verdicts[u.version][0] for u in reference.applied]


def test_reference_upsert_updates_only_the_named_columns() -> None:
    ref = Reference().apply(
        [
            _schema(T),
            _data("append", "1.csv", ["id", "name", "note"], [["1", "a", "x"], ["2", "b", None]]),
            _data("upsert", "2.csv", ["note", "id"], [["y", "2"]], second=2),
            _data("upsert", "3.csv", ["id", "note"], [["3", "z"]], second=3),  # new key, no name
            _data("upsert", "4.csv", ["id", "name"], [["3", "c"], ["1", "é€é"]], second=4),
        ]
    )
    assert _statuses(ref) == [LOADED, LOADED, LOADED, REJECTED, REJECTED]  # é€é: 7 bytes > 6
    assert ref.tables["t"].sorted_rows() == [(1, "x", "a"), (2, "y", "b")]


def test_reference_order_within_a_second() -> None:
    """Schema first, then file name, then truncate < append < upsert for one name."""
    files = [
        _data("upsert", "a.csv", ["id", "name"], [["1", "u"]]),
        _data("append", "a.csv", ["id", "name"], [["1", "a"]]),
        _data("truncate", "a.csv", ["id", "name"], [["2", "t"]]),
        _data("append", "0.csv", ["id", "name"], [["3", "z"]]),
        _schema(T, "z.json", second=1),
    ]
    ref = Reference().apply(files)
    assert [u.key.split("/", 2)[2] for u in ref.applied] == [
        "schema/t/z.json",
        "append/t/0.csv",
        "truncate/t/a.csv",
        "append/t/a.csv",
        "upsert/t/a.csv",
    ]
    assert ref.tables["t"].sorted_rows() == [(1, None, "u"), (2, None, "t")]


def test_reference_schema_rules() -> None:
    ops = T.allowed_operations
    wider = Contract("t", (T.columns[0], Col("note", "varchar(9)"), T.columns[2]), ("id",), ops)
    added = Contract("t", (*wider.columns, Col("extra", "bigint")), ("id",), ("append",))
    again = Contract("t", (*added.columns, Col("more", "integer")), ("id",), ("append",))
    ref = Reference().apply(
        [
            _schema(T, "1.json", 0),
            _schema(T, "2.json", 1),  # identical
            _schema(Contract("t", T.columns[:2], ("id",), ops), "3.json", 2),  # drops name
            _schema(wider, "4.json", 3),
            _schema(added, "5.json", 4),  # allows no more schema files
            _schema(again, "6.json", 5),
            _schema(added, "7.json", 6),  # identical to the one in force
        ]
    )
    assert _statuses(ref) == [LOADED, LOADED, REJECTED, LOADED, LOADED, REJECTED, LOADED]
    assert ref.tables["t"].contract == added


# ---- the product against the reference ---------------------------------------------------


@pytest.mark.parametrize("seed", seeds())
def test_landing_matches_the_reference(seed, warehouse, s3, s3_client, bucket) -> None:
    ticks = generate(seed)
    instance = DagsterInstance.ephemeral()
    uploads, run_problems = land_and_tick(ticks, warehouse, s3, s3_client, bucket, instance)
    reference = Reference().apply(uploads)
    problems = list(run_problems)
    problems += compare_ledger(warehouse, uploads, reference)
    problems += compare_tables(warehouse, reference)
    assert not problems, report(seed, uploads, reference, warehouse, problems)


def land_and_tick(ticks, warehouse, s3, s3_client, bucket, instance):
    """Upload each tick's files (waiting for the clock's next second where a tick says so,
    and before each tick's first upload so no second holds files of two ticks), read back
    each version's ETag and LastModified, then tick the sensor and run what it asks for."""
    uploads: list[Upload] = []
    problems: list[str] = []
    cursor = None
    put_at = judged_at = 0.0
    for tick in ticks:
        wait_for_next_second(put_at)
        if any(_uploaded_before(item, uploads) for item in tick if item != NEXT_SECOND):
            # the same content again is a new upload when it lands after the earlier one's
            # verdict (S3's and the ledger's clocks, whole seconds): land it well after
            time.sleep(max(0.0, judged_at + 2.1 - time.time()))
        landed: list[Upload] = []
        for item in tick:
            if item == NEXT_SECOND:  # several in a row: as many seconds
                wait_for_next_second(put_at)
                put_at = time.time()
                continue
            s3_client.put_object(Bucket=bucket, Key=item.key, Body=item.body)
            put_at = time.time()
            landed.append(item)
        listed = {
            o["Key"]: o
            for page in s3_client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix="landing/"
            )
            for o in page.get("Contents", [])
        }
        for upload in landed:
            upload.etag = listed[upload.key]["ETag"].strip('"')
            upload.last_modified = listed[upload.key]["LastModified"].astimezone(UTC)
        if uploads and landed:  # the harness's promise: ticks never share a second
            previous = max(u.last_modified.replace(microsecond=0) for u in uploads)
            first = min(u.last_modified.replace(microsecond=0) for u in landed)
            assert first > previous, f"tick {landed[0].tick} landed in the second of the last"
        uploads += landed
        results, cursor = sensor_tick_and_runs(SENSOR, warehouse, s3, instance, cursor)
        judged_at = time.time()
        for result in results:
            problems += unexpected_failures(result)
    return uploads, problems


def _uploaded_before(item: Upload, uploads: list[Upload]) -> bool:
    return any(u.key == item.key and u.md5 == item.md5 for u in uploads)


def wait_for_next_second(after: float) -> None:
    """Sleep until the wall clock (the local S3's too) is past the second of `after`."""
    remaining = math.floor(after) + 1 - time.time()
    if remaining > 0:
        time.sleep(remaining + 0.02)


def unexpected_failures(result) -> list[str]:
    """A run may fail only to show its refused files (a dagster Failure carrying `refused`)."""
    problems = []
    partition = result.dagster_run.tags.get("dagster/partition")
    for event in result.all_events:
        if event.event_type_value != "STEP_FAILURE":
            continue
        data = event.event_specific_data
        refusal = data.user_failure_data is not None and "refused" in (
            data.user_failure_data.metadata or {}
        )
        if not refusal:
            problems.append(f"run for {partition} failed otherwise: {data.error.to_string()}")
    return problems


def compare_ledger(warehouse, uploads: list[Upload], reference: Reference) -> list[str]:
    rows = warehouse.query(
        "select object_key, etag, last_modified, status, error from etl_audit.file_ledger"
        " order by recorded_at, object_key"
    )
    actual: dict[tuple[str, str, str], list[tuple[str, str]]] = {}
    for key, etag, landed, status, error in rows:
        actual.setdefault((key, etag, landed_second(landed)), []).append((status, error or ""))
    problems = []
    for version, verdicts in actual.items():
        if len(verdicts) != 1:
            problems.append(f"{version}: {len(verdicts)} ledger rows {verdicts}")
    for version, (status, why) in reference.verdicts.items():
        got = actual.get(version)
        if not got:
            problems.append(f"{version}: no ledger row (expected {status}: {why})")
        elif got[0][0] != status:
            problems.append(
                f"{version}: ledger says {got[0][0]} ({got[0][1]}), expected {status} ({why})"
            )
        elif ": not applied: " in got[0][1]:  # the catch-all for errors that are no refusal
            problems.append(f"{version}: rejected by an unexpected error: {got[0][1]}")
    for version in set(actual) - set(reference.verdicts):
        problems.append(f"{version}: a ledger row for no upload: {actual[version]}")
    return problems


PG_TYPES = {"integer": "integer", "bigint": "bigint", "smallint": "smallint"}


def compare_tables(warehouse, reference: Reference) -> list[str]:
    problems = []
    for table, model in sorted(reference.tables.items()):
        columns = warehouse.query(
            "select column_name, data_type, character_maximum_length, is_nullable"
            " from information_schema.columns where table_schema = %s and table_name = %s",
            (DB, table),
        )
        if model.contract is None:
            if columns:
                problems.append(f"{DB}.{table} exists; the reference declared no table")
            continue
        expected = {c.name: column_shape(c) for c in model.contract.columns}
        found = {name: (kind, width, null == "YES") for name, kind, width, null in columns}
        if found != expected:
            problems.append(f"{DB}.{table} columns: expected {expected}, found {found}")
            continue
        names = ", ".join(f'"{n}"' for n in model.contract.names)
        rows = warehouse.query(f'select {names} from "{DB}"."{table}"')  # names from the model
        actual = sorted(rows, key=reference_sort)
        if actual != model.sorted_rows():
            problems.append(f"{DB}.{table} rows differ (see below)")
    return problems


def column_shape(column: Col) -> tuple:
    if column.type in INT_RANGE:
        return (PG_TYPES[column.type], None, column.nullable)
    return ("character varying", int(column.type[8:-1]), column.nullable)


def reference_sort(row: tuple) -> tuple:
    return tuple((v is None, type(v).__name__, v if v is not None else 0) for v in row)


def report(seed: int, uploads: list[Upload], reference: Reference, warehouse, problems) -> str:
    """Everything a human needs to replay the failure: the seed, each upload (tick, landing
    time, key, ETag, body) in landing order with the reference's and the ledger's verdicts,
    and the expected and actual rows."""
    ledger = {
        (k, e, landed_second(at)): (s, err)
        for k, e, at, s, err in warehouse.query(
            "select object_key, etag, last_modified, status, error from etl_audit.file_ledger"
        )
    }
    lines = [f"seed {seed} (rerun: ETL_MODEL_SEED={seed}): {len(problems)} problem(s)"]
    lines += [f"  - {p}" for p in problems]
    lines.append("uploads in landing order (per table), with expected | actual verdicts:")
    for upload in sorted(uploads, key=lambda u: (u.table, *landing_sort_key(u))):
        expected = reference.verdicts.get(upload.version, ("(same upload again)", ""))
        actual = ledger.get(upload.version, ("(none)", ""))
        lines.append(upload.describe())
        lines.append(f"    => expected {expected[0]} ({expected[1]}) | actual {actual[0]}")
        if actual[1]:
            lines.append(f"       ledger error: {actual[1][:400]}")
    for table, model in sorted(reference.tables.items()):
        if model.contract is None:
            continue
        names = model.contract.names
        lines.append(f"{DB}.{table} {names}: expected rows {model.sorted_rows()}")
        try:
            quoted = ", ".join(f'"{n}"' for n in names)
            actual_rows = sorted(
                warehouse.query(f'select {quoted} from "{DB}"."{table}"'), key=reference_sort
            )
        except Exception as error:  # noqa: BLE001 - the report shows what it can
            actual_rows = f"(cannot read: {error})"
        lines.append(f"{DB}.{table} {names}: actual rows   {actual_rows}")
    return "\n".join(lines)


def test_the_default_seeds_tell_every_wrong_reading_of_the_rules() -> None:
    """The default seeds were picked (from 0..299, fewest uploads first) so that between them
    they catch every mutant of the reference: a product that made one of these mistakes would
    fail on one of them (pure Python, with one second per tick standing in for S3's times)."""
    missed = []
    for name in MUTANTS:
        wrong = mutant(name)
        for seed in DEFAULT_SEEDS:
            uploads = with_simulated_times(generate(seed))
            if outcome(wrong().apply(uploads)) != outcome(Reference().apply(uploads)):
                break
        else:
            missed.append(name)
    assert not missed, f"no default seed tells these mistakes from the rules: {missed}"
