"""Flights checks on published data: codes known (WARN), views consistent with the table."""

from dagster import AssetCheckResult, AssetCheckSeverity, asset_check

from etl_assets.defs.flights.assets import key_of
from etl_assets.resources.warehouse import WarehouseResource

SAMPLE = 20


def _unknown_codes_result(rows: list[tuple], what: str) -> AssetCheckResult:
    listed = ", ".join(f"{code} ({count} flights)" for code, count in rows[:SAMPLE])
    more = f" and {len(rows) - SAMPLE} more" if len(rows) > SAMPLE else ""
    return AssetCheckResult(
        passed=not rows,
        severity=AssetCheckSeverity.WARN,
        description=f"unknown {what} codes: {listed}{more}" if rows else f"every {what} known",
        metadata={"unknown_codes": len(rows), "flights_affected": sum(c for _, c in rows)},
    )


@asset_check(
    asset=key_of("flights"),
    additional_deps=[key_of("airlines")],
    description="Every flight's airline code is in airlines (WARN: lists unknown codes).",
)
def airline_codes_known(warehouse: WarehouseResource) -> AssetCheckResult:
    rows = warehouse.query(
        "select f.airline, count(*) from flights.flights f"
        " left join flights.airlines a on a.iata_code = f.airline"
        " where a.iata_code is null group by f.airline order by 2 desc, 1"
    )
    return _unknown_codes_result(rows, "airline")


@asset_check(
    asset=key_of("flights"),
    additional_deps=[key_of("airports")],
    description="Every origin and destination airport code is in airports (WARN: lists "
    "unknown codes, such as the numeric ids of the public file's October rows).",
)
def airport_codes_known(warehouse: WarehouseResource) -> AssetCheckResult:
    rows = warehouse.query(
        "with codes as ("
        " select origin_airport as code from flights.flights"
        " union all select destination_airport from flights.flights)"
        " select c.code, count(*) from codes c"
        " left join flights.airports a on a.iata_code = c.code"
        " where a.iata_code is null and c.code is not null group by c.code order by 2 desc, 1"
    )
    return _unknown_codes_result(rows, "airport")


@asset_check(
    asset=key_of("flights_reporting"),
    description="The view is non-empty and shows every flight exactly once.",
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
    asset=key_of("delayed_flights_agg"),
    description="The aggregate counts exactly the flights not cancelled that arrived late.",
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


FLIGHTS_CHECKS = [
    airline_codes_known,
    airport_codes_known,
    reporting_has_every_flight_once,
    delayed_agg_matches_flights,
]
