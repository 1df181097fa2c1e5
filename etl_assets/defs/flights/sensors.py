"""The vendor re-uploads full snapshots: only the newest of a burst is loaded."""

from etl_assets.defs.flights import tables as t
from etl_assets.defs.flights.assets import flights
from etl_assets.lib.sensors import upload_sensor

flights_upload_sensor = upload_sensor(
    flights, t.UPLOAD_PREFIX, policy="newest", name="flights_upload_sensor"
)
