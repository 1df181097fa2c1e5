"""Flights: tables, Redshift physical design, and where the vendor's files land in S3."""

from __future__ import annotations

from etl_assets.resources.dialect import TableAttributes
from etl_assets.resources.tables import TableSpec

SCHEMA = "flights"

AIRLINES = TableSpec(SCHEMA, "airlines", TableAttributes("ALL", sortkey=("iata_code",)))
AIRPORTS = TableSpec(SCHEMA, "airports", TableAttributes("ALL", sortkey=("iata_code",)))
FLIGHTS = TableSpec(SCHEMA, "flights", TableAttributes("EVEN", sortkey=("year", "month", "day")))
ALL_TABLES = [AIRLINES, AIRPORTS, FLIGHTS]
VIEWS = ["flights_reporting", "delayed_flights_agg"]  # sql/flights/<view>.sql, in this order

PREFIX = "flights/"
AIRLINES_KEY = PREFIX + "airlines.json"
AIRPORTS_KEY = PREFIX + "airports.csv"
UPLOAD_PREFIX = PREFIX + "uploads/"  # the vendor drops full snapshots here, any file name

AIRPORTS_HEADER = "IATA_CODE,AIRPORT,CITY,STATE,COUNTRY,LATITUDE,LONGITUDE"
FLIGHTS_HEADER = (
    "YEAR,MONTH,DAY,DAY_OF_WEEK,AIRLINE,FLIGHT_NUMBER,TAIL_NUMBER,ORIGIN_AIRPORT,"
    "DESTINATION_AIRPORT,SCHEDULED_DEPARTURE,DEPARTURE_TIME,DEPARTURE_DELAY,TAXI_OUT,"
    "WHEELS_OFF,SCHEDULED_TIME,ELAPSED_TIME,AIR_TIME,DISTANCE,WHEELS_ON,TAXI_IN,"
    "SCHEDULED_ARRIVAL,ARRIVAL_TIME,ARRIVAL_DELAY,DIVERTED,CANCELLED,CANCELLATION_REASON,"
    "AIR_SYSTEM_DELAY,SECURITY_DELAY,AIRLINE_DELAY,LATE_AIRCRAFT_DELAY,WEATHER_DELAY"
)
