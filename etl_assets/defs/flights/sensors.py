"""The vendor re-uploads full snapshots: only the newest of a burst is loaded. The reporting
views are materialized in the same run (their SQL is replaced only when it changed), so the
graph shows them current once the publish has refreshed them, and their checks read the new
snapshot."""

from etl_assets.defs.flights import tables as t
from etl_assets.defs.flights.assets import delayed_flights_agg, flights, flights_reporting
from etl_assets.lib.sensors import upload_sensor

flights_upload_sensor = upload_sensor(
    flights,
    t.UPLOAD_PREFIX,
    policy="newest",
    name="flights_upload_sensor",
    then=[flights_reporting, delayed_flights_agg],
)
