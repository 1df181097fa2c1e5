"""Sparkify checks on published tables: the declared references, and the fact's grain."""

from dagster import AssetCheckResult, AssetCheckSeverity, asset_check

from etl_assets.defs.sparkify import tables as t
from etl_assets.lib.checks import asset_key, reference_checks
from etl_assets.resources.warehouse import WarehouseResource

songplays_references = reference_checks(t.SONGPLAYS)


@asset_check(
    asset=asset_key(t.SONGPLAYS),
    additional_deps=[asset_key(t.STAGING_EVENTS)],
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
