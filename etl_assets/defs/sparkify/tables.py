"""Sparkify's tables: Redshift physical design, keys and references (the checks come from
these), and where the files land in S3."""

from etl_assets.loading.dialect import TableAttributes
from etl_assets.loading.sql_files import sql_folder
from etl_assets.loading.tables import Reference, TableSpec

SCHEMA = "sparkify"
SQL = sql_folder(__file__)


def _table(name: str, attributes: TableAttributes, **declared) -> TableSpec:
    return TableSpec(SCHEMA, name, SQL, attributes, **declared)


STAGING_EVENTS = _table("staging_events", TableAttributes("EVEN"))
STAGING_SONGS = _table("staging_songs", TableAttributes("EVEN"))
SONGPLAYS = _table(
    "songplays",
    TableAttributes("KEY", "song_id", ("start_time",)),
    key=("songplay_id",),
    references=(
        Reference(("user_id",), "sparkify.users", "user_id"),
        Reference(("start_time",), "sparkify.time", "start_time"),
    ),
)
USERS = _table("users", TableAttributes("ALL", sortkey=("user_id",)), key=("user_id",))
SONGS = _table("songs", TableAttributes("KEY", "song_id", ("song_id",)), key=("song_id",))
ARTISTS = _table("artists", TableAttributes("ALL", sortkey=("artist_id",)), key=("artist_id",))
TIME = _table("time", TableAttributes("ALL", sortkey=("start_time",)), key=("start_time",))

ALL_TABLES = [STAGING_EVENTS, STAGING_SONGS, SONGPLAYS, USERS, SONGS, ARTISTS, TIME]

# Object layout under the bucket (the layout of the original Udacity bucket, under one prefix)
PREFIX = "sparkify/"
SONG_DATA_PREFIX = PREFIX + "song_data/"
LOG_DATA_PREFIX = PREFIX + "log_data/"
LOG_JSONPATHS_KEY = PREFIX + "log_json_path.json"
