"""Flights: full snapshots re-uploaded by a vendor, joined with airlines and airports."""

from etl_assets.defs.flights import tables as t
from etl_assets.defs.flights.sample_data import write_flights
from etl_assets.lib.domain import Domain

REFERENCE_FILES = ("airlines.json", "airports.csv")


def object_key(relative_path: str) -> str:
    """The reference files keep their names; any other file is a vendor upload."""
    if relative_path in REFERENCE_FILES:
        return t.PREFIX + relative_path
    return t.UPLOAD_PREFIX + relative_path.rsplit("/", 1)[-1]


DOMAIN = Domain(
    name=t.SCHEMA,
    tables=t.ALL_TABLES,
    views=t.VIEWS,
    upload_prefix=t.UPLOAD_PREFIX,
    write_sample=write_flights,
    object_key=object_key,
)
