"""Sparkify end to end through Dagster, on the real local stack."""

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dagster import DagsterInstance

from etl_assets.defs.sparkify import DOMAIN
from etl_assets.defs.sparkify.sample_data import write_sparkify
from etl_assets.demo import upload_folder
from etl_assets_tests.helpers import check_results, materialize_group

TABLES = ["staging_events", "staging_songs", "songplays", "users", "songs", "artists", "time"]


def run(warehouse, s3, first: str, last: str, instance=None):
    tags = {
        "dagster/asset_partition_range_start": first,
        "dagster/asset_partition_range_end": last,
    }
    return materialize_group("sparkify", warehouse, s3, tags=tags, instance=instance)


def counts(warehouse) -> dict[str, int]:
    return {
        table: warehouse.query(f'select count(*) from sparkify."{table}"')[0][0] for table in TABLES
    }


def expected_from_files(root: Path) -> dict:
    """The figures, computed from the raw files with plain Python (no SQL involved)."""
    events = [
        json.loads(line)
        for path in sorted(root.rglob("*-events.json"))
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    songs = [json.loads(p.read_text()) for p in root.rglob("song_data/**/*.json")]
    plays = [e for e in events if e["page"] == "NextSong"]
    latest: dict[str, dict] = {}
    for e in sorted(plays, key=lambda e: (e["ts"], e["itemInSession"])):
        latest[e["userId"]] = e
    catalog = {(s["title"], s["artist_name"], s["duration"]) for s in songs}
    return {
        "staging_events": len(events),
        "staging_songs": len(songs),
        "songplays": len(plays),
        "users": len(latest),
        "songs": len({s["song_id"] for s in songs}),
        "artists": len({s["artist_id"] for s in songs}),
        "time": len({e["ts"] for e in plays}),
        "levels": Counter(e["level"] for e in latest.values()),
        "matched": sum((e["song"], e["artist"], e["length"]) in catalog for e in plays),
    }


def levels_and_matches(warehouse) -> tuple[Counter, int]:
    levels = Counter(dict(warehouse.query("select level, count(*) from sparkify.users group by 1")))
    matched = warehouse.query("select count(*) from sparkify.songplays where song_id is not null")
    return levels, matched[0][0]


@pytest.fixture
def sample(tmp_path, s3_client, bucket) -> dict:
    write_sparkify(tmp_path, seed=7, songs=40, users=25, days=5, events_per_day=200)
    upload_folder(DOMAIN, s3_client, bucket, tmp_path / "sparkify")
    return expected_from_files(tmp_path / "sparkify")


def test_generated_sample_builds_the_star_schema(warehouse, s3, sample):
    result = run(warehouse, s3, "2018-11-01", "2018-11-05")
    assert result.success
    checks = check_results(result)
    assert len(checks) == 12 and all(checks.values()), checks
    assert counts(warehouse) == {table: sample[table] for table in TABLES}
    assert levels_and_matches(warehouse) == (sample["levels"], sample["matched"])
    assert sample["matched"] > 0  # the generator plants exact matches
    # a table built by SQL names its source tables, not "0 source files" (issue 12 item 5)
    metadata = {
        e.asset_key.path[-1]: e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    assert "source_files" not in metadata["songplays"]
    sources = metadata["songplays"]["source_tables"].value
    assert "`sparkify.staging_events`" in sources and "`sparkify.staging_songs`" in sources
    assert metadata["staging_songs"]["source_files"].value > 0


def test_backfill_is_one_load_and_rerun_adds_nothing(warehouse, s3, sample):
    instance = DagsterInstance.ephemeral()
    first = run(warehouse, s3, "2018-11-01", "2018-11-05", instance)
    loads = warehouse.query(
        "select count(distinct load_id), count(*) from etl_audit.file_ledger"
        " where target_table = 'sparkify.staging_events'"
    )
    assert loads == [(1, 5)]  # five days, one load
    staging = [
        m
        for m in first.get_asset_materialization_events()
        if m.asset_key.path[-1] == "staging_events"
    ]
    assert len(staging) == 5  # one materialization per day partition, from one step
    before = counts(warehouse)

    again = run(warehouse, s3, "2018-11-01", "2018-11-05", instance)
    assert again.success
    assert counts(warehouse) == before
    assert warehouse.query("select count(*) from etl_audit.file_ledger")[0][0] == 5 + 40


def test_malformed_log_fails_the_run_and_keeps_what_was_published(
    warehouse, s3, s3_client, bucket, sample
):
    assert run(warehouse, s3, "2018-11-01", "2018-11-05").success
    before = counts(warehouse)
    key = "sparkify/log_data/2018/11/2018-11-03-events.json"
    lines = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()
    lines[41] = lines[41][:-5]  # cut the closing characters off line 42
    s3_client.put_object(Bucket=bucket, Key=key, Body="\n".join(lines).encode())

    result = run(warehouse, s3, "2018-11-01", "2018-11-05")

    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = str(failure.event_specific_data.error.to_string())
    assert f"{key}: line 42" in message and "invalid JSON" in message
    assert counts(warehouse) == before
    rejected = warehouse.query(
        "select object_key, error from etl_audit.file_ledger where status = 'rejected'"
    )
    assert [row[0] for row in rejected] == [key]


def test_real_subset_gives_the_known_figures(warehouse, s3, s3_client, bucket, shared_datasets):
    upload_folder(DOMAIN, s3_client, bucket, shared_datasets / "sparkify")
    result = run(warehouse, s3, "2018-11-01", "2018-11-30")
    assert result.success
    assert all(check_results(result).values())
    assert counts(warehouse) == {
        "staging_events": 8056,
        "staging_songs": 71,
        "songplays": 6820,
        "users": 96,
        "songs": 71,
        "artists": 69,
        "time": 6813,
    }
    assert levels_and_matches(warehouse) == (Counter(free=74, paid=22), 1)
    first, last, paid = warehouse.query(
        "select min(start_time), max(start_time), sum(case when level = 'paid' then 1 else 0 end)"
        " from sparkify.songplays"
    )[0]
    assert (first, last, paid) == (
        datetime(2018, 11, 1, 21, 1, 46, 796000),
        datetime(2018, 11, 30, 19, 54, 24, 796000),
        5591,
    )
    assert first.replace(tzinfo=UTC)  # naive UTC timestamps, as Redshift stores them


JSONPATHS_KEY = "sparkify/log_json_path.json"


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ('{"jsonpaths": ["$.a", ', "not a JSONPaths file: JSONDecodeError"),
        ('{"paths": []}', "not a JSONPaths file: KeyError('jsonpaths')"),
        ('{"jsonpaths": ["$[\'artist\']"]}', "the JSONPaths file has 1 expressions for 18 columns"),
    ],
)
def test_a_bad_jsonpaths_file_is_refused_naming_it_and_logged_per_file(
    warehouse, s3, s3_client, bucket, sample, document, reason
):
    """Issue 9 item 5: a malformed or wrong-length JSONPaths file raised raw errors and left
    no ledger row."""
    s3_client.put_object(Bucket=bucket, Key=JSONPATHS_KEY, Body=document.encode())
    result = run(warehouse, s3, "2018-11-01", "2018-11-02")
    assert not result.success
    message = str(
        next(
            e for e in result.all_events if e.event_type_value == "STEP_FAILURE"
        ).event_specific_data.error.to_string()
    )
    assert JSONPATHS_KEY in message and reason in message, message
    rejected = warehouse.query(
        "select object_key, error from etl_audit.file_ledger where status = 'rejected'"
        " order by object_key"
    )
    assert [key.rsplit("/", 1)[-1] for key, _ in rejected] == [
        "2018-11-01-events.json",
        "2018-11-02-events.json",
    ]
    assert all(JSONPATHS_KEY in error and reason in error for _, error in rejected)
    assert warehouse.query("select count(*) from sparkify.staging_events") == [(0,)]


def test_without_a_delivered_jsonpaths_file_the_shipped_one_is_used(
    warehouse, s3, s3_client, bucket, sample
):
    s3_client.delete_object(Bucket=bucket, Key=JSONPATHS_KEY)
    result = run(warehouse, s3, "2018-11-01", "2018-11-05")
    assert result.success
    assert counts(warehouse)["staging_events"] == sample["staging_events"]
    shipped = s3_client.get_object(Bucket=bucket, Key="_etl_assets/sparkify/log_json_path.json")
    assert json.loads(shipped["Body"].read())["jsonpaths"][0] == "$['artist']"


def test_the_event_days_are_the_configured_window() -> None:
    """Issue 12 item 5: an open range showed 2,943 daily partitions for one month of logs."""
    from etl_assets.defs.sparkify.assets import EVENT_DAYS, event_days_window

    keys = EVENT_DAYS.get_partition_keys()
    assert (len(keys), keys[0], keys[-1]) == (30, "2018-11-01", "2018-11-30")
    open_ended = event_days_window("2018-11-01..").get_partition_keys()
    assert len(open_ended) > 365 and open_ended[-1] > "2026"
    with pytest.raises(ValueError, match="FIRST..END"):
        event_days_window("2018-11-01")


def test_one_bad_day_of_a_backfill_refuses_that_day_only(
    warehouse, s3, s3_client, bucket, sample, tmp_path
) -> None:
    """A backfill of five days is one run; one day's file is refused (a hostile line). The
    other four days publish, each on its own, and are materialized; the run fails naming the
    refused day. It used to publish none of the five."""
    key = "sparkify/log_data/2018/11/2018-11-03-events.json"
    lines = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()
    lines[9] = lines[9][:-5]  # line 10 is not JSON
    s3_client.put_object(Bucket=bucket, Key=key, Body="\n".join(lines).encode())

    result = run(warehouse, s3, "2018-11-01", "2018-11-05")

    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.event_specific_data.error.message
    assert "1 of 5 day(s) refused" in message and f"2018-11-03: {key}: line 10" in message
    days = warehouse.query(
        "select distinct to_char(to_timestamp(ts / 1000) at time zone 'UTC', 'YYYY-MM-DD')"
        " from sparkify.staging_events order by 1"
    )
    assert [d for (d,) in days] == ["2018-11-01", "2018-11-02", "2018-11-04", "2018-11-05"]
    materialized = sorted(
        m.partition
        for m in result.get_asset_materialization_events()
        if m.asset_key.path[-1] == "staging_events"
    )
    assert materialized == ["2018-11-01", "2018-11-02", "2018-11-04", "2018-11-05"]
    statuses = dict(
        warehouse.query(
            "select object_key, status from etl_audit.file_ledger"
            " where target_table = 'sparkify.staging_events'"
        )
    )
    assert statuses[key] == "rejected" and list(statuses.values()).count("loaded") == 4
