"""Sparkify: song metadata and app event logs (JSON in S3) -> a song-play star schema."""

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

from dagster import (
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    DailyPartitionsDefinition,
    asset,
)
from dagster_aws.s3 import S3Resource
from psycopg2 import sql

from etl_assets.checks import (
    NO_KEY_DRIFT,
    ROWS_MATCH_SOURCE,
    blocking_spec,
    combine,
    emit_load_result,
    no_key_drift,
    rows_match_source,
    unique_not_null,
)
from etl_assets.defs.sparkify import tables as t
from etl_assets.loading.formats import JsonAuto, JsonPaths
from etl_assets.loading.ledger import SourceObject
from etl_assets.loading.loader import LoadTarget, ObjectLoader, rebuild_table
from etl_assets.loading.sources import list_objects, read_small_object
from etl_assets.resources.tables import TableSpec, ensure_tables
from etl_assets.resources.warehouse import WarehouseResource
from etl_assets.settings import bucket
from etl_assets.sql_files import read_sql

GROUP = "sparkify"
EVENT_DAYS = DailyPartitionsDefinition(start_date="2018-11-01", timezone="UTC")
_LOG_DAY = re.compile(r"(\d{4}-\d{2}-\d{2})-events\.json$")


def key_of(table: TableSpec) -> AssetKey:
    return AssetKey([table.schema, table.name])


STAGING_CHECKS = [
    (ROWS_MATCH_SOURCE, "Rows in the table equal the records in its source files."),
    (NO_KEY_DRIFT, "Every record carries exactly the expected JSON keys."),
]


def _staging_specs(table: TableSpec) -> list:
    return [blocking_spec(key_of(table), name, text) for name, text in STAGING_CHECKS]


@asset(
    key=key_of(t.STAGING_SONGS),
    group_name=GROUP,
    check_specs=_staging_specs(t.STAGING_SONGS),
    kinds={"s3", "sql"},
)
def staging_songs(
    context: AssetExecutionContext, warehouse: WarehouseResource, s3: S3Resource
) -> Iterator:
    """Song metadata (one JSON object per file under `sparkify/song_data/`), mapped to columns
    by key name like Redshift's `FORMAT AS JSON 'auto'`. Replaced as a whole from the files
    present; unchanged file versions are not reloaded."""
    ensure_tables(warehouse, t.ALL_TABLES)
    client = s3.get_client()
    objects = list_objects(client, bucket(), t.SONG_DATA_PREFIX, ".json")
    target = LoadTarget(t.SCHEMA, t.STAGING_SONGS.name)
    result = ObjectLoader(warehouse, client, context.run_id).load(
        target, objects, JsonAuto(), combine(rows_match_source(), no_key_drift())
    )
    yield from emit_load_result(key_of(t.STAGING_SONGS), result)


@asset(
    key=key_of(t.STAGING_EVENTS),
    group_name=GROUP,
    partitions_def=EVENT_DAYS,
    backfill_policy=BackfillPolicy.single_run(),
    check_specs=_staging_specs(t.STAGING_EVENTS),
    kinds={"s3", "sql"},
)
def staging_events(
    context: AssetExecutionContext, warehouse: WarehouseResource, s3: S3Resource
) -> Iterator:
    """App event logs, one newline-delimited JSON file per day
    (`sparkify/log_data/YYYY/MM/YYYY-MM-DD-events.json`), mapped to columns by position through
    the JSONPaths file `sparkify/log_json_path.json`. Daily partitions; a backfill of many days
    is one run and one load. Each run replaces the rows of its days (by event time)."""
    ensure_tables(warehouse, t.ALL_TABLES)
    client = s3.get_client()
    window = context.partition_time_window
    objects = log_files_in(client, bucket(), window.start.date(), window.end.date())
    jsonpaths = JsonPaths.parse(
        t.LOG_JSONPATHS_KEY, read_small_object(client, bucket(), t.LOG_JSONPATHS_KEY)
    )
    key_range = context.partition_key_range
    target = LoadTarget(
        t.SCHEMA,
        t.STAGING_EVENTS.name,
        partition_key=f"{key_range.start}..{key_range.end}",
        partition_filter=sql.SQL("ts >= {} and ts < {}").format(
            sql.Literal(_epoch_ms(window.start)), sql.Literal(_epoch_ms(window.end))
        ),
    )
    result = ObjectLoader(warehouse, client, context.run_id).load(
        target, objects, jsonpaths, combine(rows_match_source(), no_key_drift())
    )
    yield from emit_load_result(
        key_of(t.STAGING_EVENTS), result, {"days": f"{key_range.start} .. {key_range.end}"}
    )


def log_files_in(s3_client, bucket_name: str, first: date, end: date) -> list[SourceObject]:
    """The daily log files whose file-name date lies in [first, end)."""
    found: list[SourceObject] = []
    for month in _months(first, end):
        prefix = f"{t.LOG_DATA_PREFIX}{month:%Y/%m}/"
        for obj in list_objects(s3_client, bucket_name, prefix, "-events.json"):
            match = _LOG_DAY.search(obj.key)
            if match and first <= date.fromisoformat(match.group(1)) < end:
                found.append(obj)
    return found


def _months(first: date, end: date) -> Iterator[date]:
    month = first.replace(day=1)
    while month < end:
        yield month
        month = (month + timedelta(days=32)).replace(day=1)


def _epoch_ms(moment: datetime) -> int:
    return int(moment.astimezone(UTC).timestamp() * 1000)


def _derived_asset(table: TableSpec, deps: list[TableSpec], key_column: str, doc: str):
    """A table rebuilt from its SQL in `sql/sparkify/<table>.sql`, key checked before publish."""
    check_name = f"{key_column}_unique_not_null"

    @asset(
        key=key_of(table),
        group_name=GROUP,
        deps=[key_of(d) for d in deps],
        check_specs=[
            blocking_spec(key_of(table), check_name, f"{key_column} is unique and never null.")
        ],
        description=doc,
        kinds={"sql"},
    )
    def _build(warehouse: WarehouseResource) -> Iterator:
        ensure_tables(warehouse, t.ALL_TABLES)
        select = sql.SQL(read_sql(t.SCHEMA, table.name))
        result = rebuild_table(
            warehouse, LoadTarget(table.schema, table.name), select, unique_not_null(key_column)
        )
        yield from emit_load_result(key_of(table), result)

    return _build


songplays = _derived_asset(
    t.SONGPLAYS,
    [t.STAGING_EVENTS, t.STAGING_SONGS],
    "songplay_id",
    "Fact: one row per NextSong event, with the song and artist matched on title, artist name "
    "and duration (NULL when the catalogue has no exact match).",
)
users = _derived_asset(
    t.USERS,
    [t.STAGING_EVENTS],
    "user_id",
    "Dimension: one row per user who played a song, with the level of their latest play.",
)
songs = _derived_asset(t.SONGS, [t.STAGING_SONGS], "song_id", "Dimension: one row per song.")
artists = _derived_asset(
    t.ARTISTS, [t.STAGING_SONGS], "artist_id", "Dimension: one row per artist."
)
time = _derived_asset(
    t.TIME,
    [t.SONGPLAYS],
    "start_time",
    "Dimension: one row per distinct songplay start time, with hour, day, week, month, year "
    "and weekday (0 = Sunday).",
)

SPARKIFY_ASSETS = [staging_songs, staging_events, songplays, users, songs, artists, time]
