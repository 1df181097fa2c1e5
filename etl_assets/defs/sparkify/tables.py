"""Sparkify's tables, their Redshift physical design, and where their files land in S3."""

from __future__ import annotations

from etl_assets.resources.dialect import TableAttributes
from etl_assets.resources.tables import TableSpec

SCHEMA = "sparkify"

STAGING_EVENTS = TableSpec(SCHEMA, "staging_events", TableAttributes("EVEN"))
STAGING_SONGS = TableSpec(SCHEMA, "staging_songs", TableAttributes("EVEN"))
SONGPLAYS = TableSpec(SCHEMA, "songplays", TableAttributes("KEY", "song_id", ("start_time",)))
USERS = TableSpec(SCHEMA, "users", TableAttributes("ALL", sortkey=("user_id",)))
SONGS = TableSpec(SCHEMA, "songs", TableAttributes("KEY", "song_id", ("song_id",)))
ARTISTS = TableSpec(SCHEMA, "artists", TableAttributes("ALL", sortkey=("artist_id",)))
TIME = TableSpec(SCHEMA, "time", TableAttributes("ALL", sortkey=("start_time",)))

ALL_TABLES = [STAGING_EVENTS, STAGING_SONGS, SONGPLAYS, USERS, SONGS, ARTISTS, TIME]

# Object layout under the bucket (the layout of the original Udacity bucket, under one prefix)
PREFIX = "sparkify/"
SONG_DATA_PREFIX = PREFIX + "song_data/"
LOG_DATA_PREFIX = PREFIX + "log_data/"
LOG_JSONPATHS_KEY = PREFIX + "log_json_path.json"
