"""Every file landing under `landing/` is routed to its table's partition, in landing order."""

from etl_assets.defs.landing.assets import LANDING_TABLES, landing_tables, route
from etl_assets.defs.landing.keys import PREFIX
from etl_assets.lib.sensors import routed_upload_sensor

landing_upload_sensor = routed_upload_sensor(
    landing_tables, PREFIX, LANDING_TABLES, route, name="landing_upload_sensor"
)
