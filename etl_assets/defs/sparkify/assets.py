"""Sparkify: song metadata and app event logs (JSON in S3) -> a song-play star schema."""

import os
from datetime import UTC, datetime
from pathlib import Path

from dagster import AssetExecutionContext, DailyPartitionsDefinition
from psycopg2 import sql

from etl_assets.defs.sparkify import tables as t
from etl_assets.lib.assets import table_from_s3, table_from_select
from etl_assets.lib.sources import DatedFiles, Prefix, Selection
from etl_assets.loading.errors import LoadError
from etl_assets.loading.formats import JsonAuto, JsonPaths
from etl_assets.loading.publish import ReplacePartition
from etl_assets.loading.sources import read_small_object

# The days the app's logs can cover, as the UI shows them: `first..end` (end exclusive), or
# `first..` for every day up to today. The default is the month the Sparkify logs hold: an
# open range showed 2,943 daily partitions "1 % filled" for one month of data.
DEFAULT_EVENT_DAYS = "2018-11-01..2018-12-01"


def event_days_window(window: str | None = None) -> DailyPartitionsDefinition:
    """`ETL_SPARKIFY_EVENT_DAYS` (or `window`) as daily partitions."""
    window = window or os.environ.get("ETL_SPARKIFY_EVENT_DAYS") or DEFAULT_EVENT_DAYS
    first, separator, end = window.partition("..")
    if not separator:
        raise ValueError(f"ETL_SPARKIFY_EVENT_DAYS={window!r}: expected FIRST..END or FIRST..")
    return DailyPartitionsDefinition(
        start_date=first.strip(), end_date=end.strip() or None, timezone="UTC"
    )


EVENT_DAYS = event_days_window()


# The mapping this project owns ships with it: used when a delivery brings none.
SHIPPED_JSONPATHS = Path(__file__).with_name("log_json_path.json")
SHIPPED_JSONPATHS_KEY = "_etl_assets/sparkify/log_json_path.json"


def log_jsonpaths(s3_client, bucket: str) -> JsonPaths:
    """The JSONPaths file delivered beside the logs; without one, the project's own, put in
    the bucket (Redshift's COPY reads it from there). A delivered file that is not a JSONPaths
    document is refused naming s3://bucket/key and what is wrong."""
    key = t.LOG_JSONPATHS_KEY
    try:
        document = read_small_object(s3_client, bucket, key)
    except s3_client.exceptions.NoSuchKey:
        key, document = SHIPPED_JSONPATHS_KEY, SHIPPED_JSONPATHS.read_text()
        s3_client.put_object(Bucket=bucket, Key=key, Body=document.encode())
    try:
        return JsonPaths.parse(key, document)
    except (ValueError, KeyError, TypeError) as error:
        raise LoadError(f"s3://{bucket}/{key}", None, f"not a JSONPaths file: {error!r}") from error


def event_days(context: AssetExecutionContext, selection: Selection) -> ReplacePartition:
    """The run's days: the events whose `ts` (epoch milliseconds) falls inside them."""
    del selection  # the days' files
    window, keys = context.partition_time_window, context.partition_key_range
    return ReplacePartition(
        key=f"{keys.start}..{keys.end}",
        rows=sql.SQL("ts >= {} and ts < {}").format(
            sql.Literal(_epoch_ms(window.start)), sql.Literal(_epoch_ms(window.end))
        ),
    )


def _epoch_ms(moment: datetime) -> int:
    return int(moment.astimezone(UTC).timestamp() * 1000)


staging_songs = table_from_s3(
    t.STAGING_SONGS,
    source=Prefix(t.SONG_DATA_PREFIX, ".json"),
    file_format=JsonAuto(),
    key_drift=True,
    description="Song metadata (one JSON object per file under `sparkify/song_data/`), mapped to "
    "columns by key name like Redshift's `FORMAT AS JSON 'auto'`. Replaced as a whole from the "
    "files present; unchanged file versions are not reloaded.",
)
staging_events = table_from_s3(
    t.STAGING_EVENTS,
    source=DatedFiles(t.LOG_DATA_PREFIX, "-events.json"),
    file_format=log_jsonpaths,
    publish=event_days,
    key_drift=True,
    partitions_def=EVENT_DAYS,
    description="App event logs, one newline-delimited JSON file per day "
    "(`sparkify/log_data/YYYY/MM/YYYY-MM-DD-events.json`), mapped to columns by position "
    "through the JSONPaths file `sparkify/log_json_path.json`. Daily partitions; a backfill of "
    "many days is one run and one load. Each run replaces the rows of its days (by event time).",
)
songplays = table_from_select(
    t.SONGPLAYS,
    deps=[t.STAGING_EVENTS, t.STAGING_SONGS],
    description="Fact: one row per NextSong event, with the song and artist matched on title, "
    "artist name and duration (NULL when the catalogue has no exact match).",
)
users = table_from_select(
    t.USERS,
    deps=[t.STAGING_EVENTS],
    description="Dimension: one row per user who played a song, with the level of their latest "
    "play.",
)
songs = table_from_select(
    t.SONGS, deps=[t.STAGING_SONGS], description="Dimension: one row per song."
)
artists = table_from_select(
    t.ARTISTS, deps=[t.STAGING_SONGS], description="Dimension: one row per artist."
)
time = table_from_select(
    t.TIME,
    deps=[t.SONGPLAYS],
    description="Dimension: one row per distinct songplay start time, with hour, day, week, "
    "month, year and weekday (0 = Sunday).",
)
