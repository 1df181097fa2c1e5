"""Flights checks on published data: codes known (WARN, from the declared references), views
consistent with the table."""

from dagster import AssetCheckResult, AssetCheckSeverity, AssetKey, asset_check

from etl_assets.defs.flights import tables as t
from etl_assets.lib.checks import reference_checks
from etl_assets.resources.warehouse import WarehouseResource

flights_references = reference_checks(t.FLIGHTS)


@asset_check(
    asset=AssetKey([t.SCHEMA, "flights_reporting"]),
    description="The view is non-empty and shows every flight exactly once.",
    additional_deps=[AssetKey([t.SCHEMA, "flights"])],  # in an upload's run: after its publish
)
def reporting_has_every_flight_once(warehouse: WarehouseResource) -> AssetCheckResult:
    ((flights, reported),) = warehouse.query(
        "select (select count(*) from flights.flights),"
        " (select count(*) from flights.flights_reporting)"
    )
    return AssetCheckResult(
        passed=flights > 0 and flights == reported,
        severity=AssetCheckSeverity.ERROR,
        description=f"{reported} rows in flights_reporting, {flights} flights",
        metadata={"flights": flights, "reported": reported},
    )


@asset_check(
    asset=AssetKey([t.SCHEMA, "delayed_flights_agg"]),
    description="The aggregate counts exactly the flights not cancelled that arrived late.",
    additional_deps=[AssetKey([t.SCHEMA, "flights"])],
)
def delayed_agg_matches_flights(warehouse: WarehouseResource) -> AssetCheckResult:
    ((delayed, aggregated),) = warehouse.query(
        "select (select count(*) from flights.flights where cancelled = 0 and arrival_delay > 0),"
        " (select cast(coalesce(sum(flights), 0) as bigint) from flights.delayed_flights_agg)"
    )
    return AssetCheckResult(
        passed=delayed == aggregated and (delayed > 0) == (aggregated > 0),
        severity=AssetCheckSeverity.ERROR,
        description=f"{aggregated} flights aggregated, {delayed} delayed flights in the table",
        metadata={"delayed_flights": delayed, "aggregated": aggregated},
    )
