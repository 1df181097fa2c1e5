"""Darties: a retail chain's Excel workbooks (objectives vs actuals per store city, month and
product family) -> a sales star schema."""

from etl_assets.defs.darties import tables as t
from etl_assets.defs.darties.sample_data import write_darties
from etl_assets.lib.domain import Domain

DOMAIN = Domain(
    name=t.SCHEMA,
    tables=t.ALL_TABLES,
    views=t.VIEWS,
    upload_prefix=t.UPLOAD_PREFIX,
    write_sample=write_darties,
    runs_by_sensor=True,
)
