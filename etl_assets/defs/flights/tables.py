"""Flights: tables (physical design, keys, references), views, and where the vendor's files
land in S3."""

from etl_assets.loading.dialect import TableAttributes
from etl_assets.loading.sql_files import sql_folder
from etl_assets.loading.tables import WARN, Reference, TableSpec

SCHEMA = "flights"
SQL = sql_folder(__file__)

AIRLINES = TableSpec(
    SCHEMA, "airlines", SQL, TableAttributes("ALL", sortkey=("iata_code",)), key=("iata_code",)
)
AIRPORTS = TableSpec(
    SCHEMA, "airports", SQL, TableAttributes("ALL", sortkey=("iata_code",)), key=("iata_code",)
)
FLIGHTS = TableSpec(
    SCHEMA,
    "flights",
    SQL,
    TableAttributes("EVEN", sortkey=("year", "month", "day")),
    # the public file's October rows carry numeric airport ids: reported, never refused
    references=(
        Reference(("airline",), "flights.airlines", "iata_code", WARN),
        Reference(("origin_airport", "destination_airport"), "flights.airports", "iata_code", WARN),
    ),
)
ALL_TABLES = [AIRLINES, AIRPORTS, FLIGHTS]
VIEWS = ["flights_reporting", "delayed_flights_agg"]  # sql/<view>.view.sql

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
