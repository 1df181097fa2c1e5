"""Darties: Excel workbooks (objectives and actuals per store city, month and product family)
-> a sales star schema. Each workbook version is converted to CSV and loaded by the common
loader into `workbook_sales` / `workbook_stores`, replacing what its previous version
published; the star is derived from those with the workbooks' precedence."""

from dagster import AssetExecutionContext, AssetKey
from psycopg2 import sql

from etl_assets.defs.darties import tables as t
from etl_assets.defs.darties.checks import (
    budget_actuals_null,
    no_hidden_or_extra_content,
    no_stray_cells,
    sheet_sums_match,
    units_not_negative,
)
from etl_assets.defs.darties.converters import SALES_HEADER, STORES_HEADER, WORKBOOKS, WorkbookToCsv
from etl_assets.lib.assets import table_from_s3, table_from_select, view
from etl_assets.lib.sources import Selection, Uploads
from etl_assets.loading.formats import Csv
from etl_assets.loading.publish import ReplacePartition


def this_workbook(context: AssetExecutionContext, selection: Selection) -> ReplacePartition:
    """The rows the loaded workbook published before: a new version replaces exactly them."""
    del context
    (workbook,) = selection.objects
    return ReplacePartition(
        key=workbook.key.removeprefix(t.UPLOAD_PREFIX)[-64:],  # the ledger's partition_key
        rows=sql.SQL("source_key = {}").format(sql.Literal(workbook.key)),
    )


workbook_sales = table_from_s3(
    t.WORKBOOK_SALES,
    source=Uploads(t.UPLOAD_PREFIX),
    file_format=Csv(expected_header=",".join(SALES_HEADER)),
    publish=this_workbook,
    converter=WorkbookToCsv("sales"),
    more_checks=[
        sheet_sums_match(WORKBOOKS),
        budget_actuals_null(),
        no_stray_cells(WORKBOOKS),
        no_hidden_or_extra_content(WORKBOOKS),
    ],
    description="The nine measure sheets (V|CA|MB x Fours|Hifi|Magneto) of every workbook under "
    "`darties/`, one row per workbook, store city, month and family: the workbook is read with "
    "python-calamine (after its zip and sheet XML are checked and bounded), written as CSV under "
    "`_converted/darties/` "
    "and COPYed. A new version of a workbook replaces exactly the rows its previous version "
    "published; the same version twice adds nothing.",
)
workbook_stores = table_from_s3(
    t.WORKBOOK_STORES,
    source=Uploads(t.UPLOAD_PREFIX),
    file_format=Csv(expected_header=",".join(STORES_HEADER)),
    publish=this_workbook,
    converter=WorkbookToCsv("stores"),
    description="The `darties` sheet (one row per store city: brand, advertising, region, "
    "location, cash registers, population, demographic rates) of every workbook under "
    "`darties/`, kept per workbook.",
)
stores = table_from_select(
    t.STORES,
    deps=[t.WORKBOOK_STORES],
    description="Dimension: one row per store city, from the most recently landed workbook's "
    "`darties` sheet.",
)
product_families = table_from_select(
    t.PRODUCT_FAMILIES,
    deps=[t.WORKBOOK_SALES],
    description="Dimension: the product families (Fours = ovens, Hifi, Magneto = video recorders).",
)
months = table_from_select(
    t.MONTHS,
    deps=[t.WORKBOOK_SALES],
    description="Dimension: each month the workbooks cover: its first day, year, quarter, "
    "month and French label.",
)
sales = table_from_select(
    t.SALES,
    deps=[t.WORKBOOK_SALES],
    more_checks=[units_not_negative()],
    description="Fact: one row per store city, month and product family: objective and actual "
    "of units, turnover and margin. Per month, every row comes from one workbook: the monthly "
    "workbook for that month, else the yearly HISTO, else the yearly BUDGET (whose actuals are "
    "NULL); among workbooks of one kind the most recently landed.",
)
sales_vs_objective = view(
    t.SCHEMA,
    "sales_vs_objective",
    t.SQL,
    deps=[AssetKey([t.SCHEMA, "sales"]), AssetKey([t.SCHEMA, "stores"])],
    description="View: per region, month and family, the six sums and the attainment ratios "
    "actual / objective of units, turnover and margin.",
)
