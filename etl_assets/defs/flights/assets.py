"""Flights: a vendor re-uploads the full flights file several times a day; each upload replaces
the published snapshot atomically, joined with airlines and airports in reporting views."""

from dagster import AssetKey

from etl_assets.defs.flights import tables as t
from etl_assets.lib.assets import table_from_s3, view
from etl_assets.lib.converters import JsonArrayToLines
from etl_assets.lib.sources import Key, Uploads
from etl_assets.loading.formats import Csv, JsonAuto
from etl_assets.loading.publish import Snapshot

airlines = table_from_s3(
    t.AIRLINES,
    source=Key(t.AIRLINES_KEY),
    file_format=JsonAuto(ignore_case=True),
    converter=JsonArrayToLines(),  # Redshift's COPY cannot read the file's top-level array
    description="Airline IATA code -> name, from `flights/airlines.json` (a JSON array; keys "
    "matched to columns whatever their case).",
)
airports = table_from_s3(
    t.AIRPORTS,
    source=Key(t.AIRPORTS_KEY),
    file_format=Csv(expected_header=t.AIRPORTS_HEADER),
    description="Airport IATA code -> name, city, state, country, latitude, longitude, from "
    "`flights/airports.csv`.",
)
flights = table_from_s3(
    t.FLIGHTS,
    source=Uploads(t.UPLOAD_PREFIX),
    file_format=Csv(expected_header=t.FLIGHTS_HEADER),
    publish=Snapshot(),
    refreshes=[
        AssetKey([t.SCHEMA, "flights_reporting"]),
        AssetKey([t.SCHEMA, "delayed_flights_agg"]),
    ],
    description="The newest full flights snapshot the vendor uploaded under `flights/uploads/`. "
    "Each upload replaces the table's rows in one transaction (readers see the old snapshot or "
    "the new one, never none, never an error); an older upload processed late never replaces a "
    "newer one.",
)


def _key(name: str) -> AssetKey:
    return AssetKey([t.SCHEMA, name])


flights_reporting = view(
    t.SCHEMA,
    "flights_reporting",
    t.SQL,
    deps=[_key("flights"), _key("airlines"), _key("airports")],
    description="View: one row per flight with its date, weekday name, airline name and the "
    "origin and destination airports' name, city, state, latitude and longitude.",
)
delayed_flights_agg = view(
    t.SCHEMA,
    "delayed_flights_agg",
    t.SQL,
    deps=[_key("flights_reporting")],
    description="View: flights not cancelled that arrived late, per flight date, airline and "
    "route: number of flights and total/average air time, distance, arrival delay and each "
    "delay cause.",
)
