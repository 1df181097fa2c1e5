"""Darties: tables (grain, keys, references), the view, and where workbooks land in S3."""

from etl_assets.loading.dialect import TableAttributes
from etl_assets.loading.sql_files import sql_folder
from etl_assets.loading.tables import WARN, Reference, TableSpec

SCHEMA = "darties"
SQL = sql_folder(__file__)
UPLOAD_PREFIX = "darties/"  # workbooks land here, one file per workbook

SALES_GRAIN = ("store_city", "month_start", "family")

# What each workbook version published, kept per workbook (`source_key`): a new version of a
# workbook replaces exactly its own rows; the star is derived from these with precedence.
WORKBOOK_SALES = TableSpec(
    SCHEMA,
    "workbook_sales",
    SQL,
    TableAttributes("EVEN", sortkey=("month_start",)),
    key=("source_key", *SALES_GRAIN),
)
WORKBOOK_STORES = TableSpec(
    SCHEMA,
    "workbook_stores",
    SQL,
    TableAttributes("ALL", sortkey=("store_city",)),
    key=("source_key", "store_city"),
)
STORES = TableSpec(
    SCHEMA, "stores", SQL, TableAttributes("ALL", sortkey=("store_city",)), key=("store_city",)
)
PRODUCT_FAMILIES = TableSpec(
    SCHEMA, "product_families", SQL, TableAttributes("ALL"), key=("family",)
)
MONTHS = TableSpec(
    SCHEMA, "months", SQL, TableAttributes("ALL", sortkey=("month_start",)), key=("month_start",)
)
SALES = TableSpec(
    SCHEMA,
    "sales",
    SQL,
    TableAttributes("KEY", distkey="store_city", sortkey=("month_start",)),
    key=SALES_GRAIN,
    references=(
        Reference(("store_city",), "darties.stores", "store_city"),
        Reference(("family",), "darties.product_families", "family"),
        Reference(("month_start",), "darties.months", "month_start", WARN),
    ),
)
ALL_TABLES = [WORKBOOK_SALES, WORKBOOK_STORES, STORES, PRODUCT_FAMILIES, MONTHS, SALES]
VIEWS = ["sales_vs_objective"]  # sql/<view>.view.sql
