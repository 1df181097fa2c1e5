"""Every workbook version dropped under `darties/` gets its own run, in landing order."""

from etl_assets.defs.darties import assets as a  # the module: its assets are collected once
from etl_assets.defs.darties import tables as t
from etl_assets.lib.sensors import upload_sensor

darties_upload_sensor = upload_sensor(
    [a.workbook_sales, a.workbook_stores],
    t.UPLOAD_PREFIX,
    policy="every_file",
    name="darties_upload_sensor",
    then=[a.stores, a.product_families, a.months, a.sales, a.sales_vs_objective],
)
