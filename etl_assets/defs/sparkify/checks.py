"""Sparkify checks that read published tables (the blocking ones run inside the loads)."""

from dagster import AssetCheckResult, AssetCheckSeverity, asset_check

from etl_assets.defs.sparkify import tables as t
from etl_assets.defs.sparkify.assets import key_of
from etl_assets.resources.warehouse import WarehouseResource

SAMPLE = 10


@asset_check(
    asset=key_of(t.SONGPLAYS),
    additional_deps=[key_of(t.STAGING_EVENTS)],
    description="songplays has exactly one row per NextSong event in staging_events.",
)
def songplays_match_next_song_events(warehouse: WarehouseResource) -> AssetCheckResult:
    ((songplays, next_songs),) = warehouse.query(
        "select (select count(*) from sparkify.songplays),"
        " (select count(*) from sparkify.staging_events where page = 'NextSong')"
    )
    return AssetCheckResult(
        passed=songplays == next_songs,
        severity=AssetCheckSeverity.ERROR,
        description=f"{songplays} songplays, {next_songs} NextSong events",
        metadata={"songplays": songplays, "next_song_events": next_songs},
    )


@asset_check(
    asset=key_of(t.SONGPLAYS),
    additional_deps=[key_of(t.USERS), key_of(t.TIME)],
    description="Every songplay's user_id is in users and its start_time is in time.",
)
def songplays_users_and_times_exist(warehouse: WarehouseResource) -> AssetCheckResult:
    orphans = warehouse.query(
        "select 'user_id' as key, cast(p.user_id as varchar(32)), count(*)"
        " from sparkify.songplays p left join sparkify.users u on u.user_id = p.user_id"
        " where u.user_id is null group by 1, 2"
        " union all"
        " select 'start_time', cast(p.start_time as varchar(32)), count(*)"
        ' from sparkify.songplays p left join sparkify."time" s on s.start_time = p.start_time'
        " where s.start_time is null group by 1, 2"
        " order by 3 desc limit %s",
        (SAMPLE,),
    )
    detail = ", ".join(f"{kind}={value} ({count} plays)" for kind, value, count in orphans)
    return AssetCheckResult(
        passed=not orphans,
        severity=AssetCheckSeverity.ERROR,
        description=f"orphan keys: {detail}" if orphans else "all users and start times exist",
        metadata={"orphan_keys_shown": len(orphans)},
    )


SPARKIFY_CHECKS = [songplays_match_next_song_events, songplays_users_and_times_exist]
