"""Darties on the real stack, driven as in production: workbooks land under `darties/`, the
upload sensor ticks, its runs convert, load and derive the star."""

from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterInstance

from etl_assets.defs.darties.sample_data import (
    city_names,
    workbook_sheets,
    write_darties,
    write_workbook,
)
from etl_assets_tests.helpers import failure_message, sensor_tick_and_runs

SENSOR = "darties_upload_sensor"
CITIES = city_names(12)


@pytest.fixture
def instance():
    return DagsterInstance.ephemeral()


def land(s3_client, bucket: str, path: Path, name: str | None = None) -> str:
    key = f"darties/{name or path.name}"
    s3_client.upload_file(str(path), bucket, key)
    return key


def tick(warehouse, s3, instance, cursor=None):
    return sensor_tick_and_runs(SENSOR, warehouse, s3, instance, cursor)


def ledger(warehouse, key: str) -> list[tuple]:
    return warehouse.query(
        "select target_table, status, error from etl_audit.file_ledger where object_key = %s"
        " order by recorded_at, target_table",
        (key,),
    )


@pytest.fixture
def sample(warehouse, s3, s3_client, bucket, instance, tmp_path):
    """The generated sample: 2020 HISTO, 2021 BUDGET, January and février 2021."""
    folder = write_darties(tmp_path)
    for path in sorted(folder.iterdir()):
        land(s3_client, bucket, path)
    results, cursor = tick(warehouse, s3, instance)
    return folder, results, cursor


def test_workbooks_become_a_star_with_monthly_precedence(sample, warehouse) -> None:
    folder, results, _ = sample
    assert len(results) == 4 and all(r.success for r in results)
    # 12 cities x 3 families x (12 months of 2020 + 12 of 2021)
    assert warehouse.query("select count(*) from darties.sales") == [(12 * 3 * 24,)]
    by_month = dict(
        warehouse.query(
            "select to_char(month_start, 'YYYY-MM'), min(source_key) from darties.sales"
            " group by 1 having count(distinct source_key) = 1"
        )
    )
    assert len(by_month) == 24  # every month from exactly one workbook
    assert by_month["2020-06"] == "darties/2020_HISTO.xlsx"
    assert by_month["2021-01"] == "darties/Janvier_2021.xlsx"
    assert by_month["2021-02"] == "darties/février_2021.xlsx"
    assert by_month["2021-03"] == "darties/2021_BUDGET.xlsx"
    # the monthly workbook's own numbers, not the budget's
    january = pd.read_excel(folder / "Janvier_2021.xlsx", sheet_name="V_Hifi")
    published = dict(
        warehouse.query(
            "select store_city, units_actual from darties.sales"
            " where month_start = '2021-01-01' and family = 'Hifi'"
        )
    )
    assert published == dict(zip(january["Villes"], january["R_mois"], strict=True))
    budget_actuals = warehouse.query(
        "select count(*), count(units_actual), count(turnover_actual), count(margin_actual)"
        " from darties.sales where source_key like '%BUDGET%'"
    )
    assert budget_actuals == [(12 * 3 * 10, 0, 0, 0)]  # NULL, never 0
    assert warehouse.query("select count(*) from darties.stores") == [(12,)]
    assert warehouse.query("select count(*), min(label_fr) from darties.months") == [(24, "Août")]
    assert warehouse.query("select family, label from darties.product_families order by 1") == [
        ("Fours", "Ovens"),
        ("Hifi", "Hi-fi"),
        ("Magneto", "Video recorders"),
    ]
    assert warehouse.query("select count(*) from darties.sales_vs_objective") == [(5 * 24 * 3,)]
    sums = [
        e
        for r in results
        for e in r.get_asset_check_evaluations()
        if e.check_name == "sheet_sums_match"
    ]
    # each workbook: 9 sheets (3 measures x 3 families) x objective and actual
    assert [e.passed for e in sums] == [True] * 4
    assert all("18 sheet sums equal" in e.description for e in sums)
    checks = {e.check_name: e for r in results for e in r.get_asset_check_evaluations()}
    assert checks["budget_actuals_null"].passed
    assert checks["store_city_month_start_family_unique_not_null"].passed
    assert checks["references_stores"].passed


def test_a_new_version_replaces_its_rows_and_the_same_version_adds_nothing(
    sample, warehouse, s3, s3_client, bucket, instance, tmp_path
) -> None:
    _, _, cursor = sample
    before = warehouse.query("select count(*), sum(units_actual) from darties.sales")
    changed = workbook_sheets("monthly", CITIES, seed=99)
    changed["V_Fours"]["R_mois"] = 1000
    key = land(s3_client, bucket, write_workbook(tmp_path / "v2" / "Janvier_2021.xlsx", changed))
    results, cursor = tick(warehouse, s3, instance, cursor)
    assert [r.success for r in results] == [True]
    assert warehouse.query("select count(*) from darties.sales") == [before[0][:1]]
    fours = warehouse.query(
        "select min(units_actual), max(units_actual), count(*) from darties.sales"
        " where month_start = '2021-01-01' and family = 'Fours'"
    )
    assert fours == [(1000, 1000, 12)]
    assert warehouse.query(
        "select count(*) from darties.workbook_sales where source_key = %s", (key,)
    ) == [(12 * 3,)]
    # a lost cursor re-lists everything: the versions the ledger has loaded start no run
    # (issue 12 item 1), and nothing changes
    after = warehouse.query("select count(*), sum(units_actual) from darties.sales")
    ledger_rows = warehouse.query("select count(*) from etl_audit.file_ledger")
    results, _ = tick(warehouse, s3, instance, cursor=None)
    assert results == []
    assert warehouse.query("select count(*), sum(units_actual) from darties.sales") == after
    statuses = {s for (s,) in warehouse.query("select distinct status from etl_audit.file_ledger")}
    assert statuses == {"loaded"}
    assert warehouse.query("select count(*) from etl_audit.file_ledger") == ledger_rows


def _mutated(change) -> dict[str, pd.DataFrame]:
    sheets = workbook_sheets("monthly", CITIES, seed=7)
    change(sheets)
    return sheets


def _set(sheet: str, column: str, index: int, value):
    def change(sheets):
        frame = sheets[sheet]
        frame[column] = frame[column].astype(object)
        frame.loc[index, column] = value

    return change


BAD_WORKBOOKS = {
    "missing sheet": (
        "Mars_2021.xlsx",
        lambda s: s.pop("MB_Hifi"),
        "sheet MB_Hifi: missing (expected sheets darties, V_Fours",
    ),
    "misnamed sheet": (
        "Mars_2021.xlsx",
        lambda s: s.update({"v_fours": s.pop("V_Fours")}),
        "sheet V_Fours: missing",
    ),
    "unexpected column": (
        "Mars_2021.xlsx",
        lambda s: s["CA_Hifi"].insert(3, "Remarque", [None, "promo"] + [None] * 10),
        "sheet CA_Hifi, row 3, column Remarque: unexpected column",
    ),
    "fractional units": (
        "Mars_2021.xlsx",
        _set("V_Hifi", "R_mois", 4, 2.5),
        "sheet V_Hifi, row 6, column R_mois: 2.5 is not a whole number of units",
    ),
    "text in a number": (
        "Mars_2021.xlsx",
        _set("CA_Fours", "O_mois", 2, "n/a"),
        "sheet CA_Fours, row 4, column O_mois: 'n/a' is not a number",
    ),
    "city twice": (
        "Mars_2021.xlsx",
        _set("V_Magneto", "Villes", 5, CITIES[0]),
        "sheet V_Magneto, row 7, column Villes: city 'Ville_0000' appears twice (rows 2, 7)",
    ),
    "unknown city": (
        "Mars_2021.xlsx",
        _set("MB_Fours", "Villes", 3, "Atlantis"),
        "sheet MB_Fours, row 5, column Villes: city 'Atlantis' is not in the darties sheet",
    ),
    "month not French": (
        "January_2021.xlsx",
        lambda s: None,
        "file name: 'January' is not a French month name",
    ),
    "no such workbook name": (
        "ventes.xlsx",
        lambda s: None,
        "file name: 'ventes.xlsx' is not YYYY_HISTO.xlsx, YYYY_BUDGET.xlsx or"
        " <French month>_YYYY.xlsx",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_WORKBOOKS))
def test_a_bad_workbook_is_refused_naming_sheet_row_and_column(
    case, sample, warehouse, s3, s3_client, bucket, instance, tmp_path
) -> None:
    _, _, cursor = sample
    name, change, reason = BAD_WORKBOOKS[case]
    before = warehouse.query("select * from darties.sales order by 1, 2, 3")
    key = land(s3_client, bucket, write_workbook(tmp_path / "bad" / name, _mutated(change)))
    results, _ = tick(warehouse, s3, instance, cursor)
    (run,) = results
    assert not run.success
    message = failure_message(run)
    assert f"{key}: {reason}" in message, message
    rows = ledger(warehouse, key)
    assert [(table, status) for table, status, _ in rows] == [
        ("darties.workbook_sales", "rejected"),
        ("darties.workbook_stores", "rejected"),
    ]
    assert all(reason in error for _, _, error in rows)
    assert warehouse.query("select * from darties.sales order by 1, 2, 3") == before


@pytest.mark.parametrize(
    ("name", "body", "reason"),
    [
        ("Avril_2021.xlsx", b"Villes;O_mois\nParis;3\n", "not an Excel workbook"),
        ("Mai_2021.xlsx", b"", "not an Excel workbook"),
    ],
)
def test_a_file_that_is_not_a_workbook_is_refused(
    name, body, reason, sample, warehouse, s3, s3_client, bucket, instance
) -> None:
    _, _, cursor = sample
    key = f"darties/{name}"
    s3_client.put_object(Bucket=bucket, Key=key, Body=body)
    (run,) = tick(warehouse, s3, instance, cursor)[0]
    assert not run.success and f"{key}: file: {reason}" in failure_message(run)
    assert {status for _, status, _ in ledger(warehouse, key)} == {"rejected"}


def test_budget_actuals_are_refused(sample, warehouse, s3, s3_client, bucket, instance, tmp_path):
    _, _, cursor = sample
    sheets = workbook_sheets("histo", CITIES, seed=3)  # a HISTO's actuals, named a budget
    key = land(s3_client, bucket, write_workbook(tmp_path / "b" / "2022_BUDGET.xlsx", sheets))
    (run,) = tick(warehouse, s3, instance, cursor)[0]
    assert not run.success
    assert f"{key}: file: a budget workbook carries actuals" in failure_message(run)


def test_real_workbooks_load_and_match_an_independent_reading(
    warehouse, s3, s3_client, bucket, instance, shared_datasets
) -> None:
    """The real 2020 HISTO and January 2021 workbooks (read in place), against figures read
    from the same files by openpyxl (the loader reads with calamine)."""
    folder = shared_datasets / "darties"
    for name in ("2020_HISTO.xlsx", "Janvier_2021.xlsx"):
        land(s3_client, bucket, folder / name)
    results, _ = tick(warehouse, s3, instance)
    assert [r.success for r in results] == [True, True]
    assert warehouse.query("select count(*) from darties.sales") == [(48 * 3 * 13,)]
    assert warehouse.query("select count(*) from darties.stores") == [(48,)]
    stray = [
        e
        for r in results
        for e in r.get_asset_check_evaluations()
        if e.check_name == "no_stray_cells" and not e.passed
    ]
    assert [e.description for e in stray] == [
        "sheet CA_Magneto, row 24, column Unnamed: 7: '&' ignored (no header)"
    ]

    histo = folder / "2020_HISTO.xlsx"
    regions = pd.read_excel(histo, sheet_name="darties", engine="openpyxl")[["Villes", "REGION"]]
    turnover = pd.concat(
        pd.read_excel(histo, sheet_name=f"CA_{f}", engine="openpyxl")
        for f in ("Fours", "Hifi", "Magneto")
    )
    actual = turnover.filter(like="R_").sum(axis=1).groupby(turnover["Villes"]).sum()
    objective = turnover.filter(like="O_").sum(axis=1).groupby(turnover["Villes"]).sum()
    by_region = regions.set_index("Villes").join(actual.rename("a")).join(objective.rename("o"))
    expected = by_region.groupby("REGION")[["a", "o"]].sum()
    published = warehouse.query(
        "select region, sum(turnover_actual), sum(turnover_objective) from"
        " darties.sales_vs_objective where month_start < '2021-01-01' group by region"
    )
    assert len(published) == 5
    for region, turnover_actual, turnover_objective in published:
        assert turnover_actual == pytest.approx(expected.loc[region, "a"])
        assert turnover_objective == pytest.approx(expected.loc[region, "o"])
    january = pd.read_excel(folder / "Janvier_2021.xlsx", sheet_name="V_Magneto", engine="openpyxl")
    ((objective, actual, counted),) = warehouse.query(
        "select sum(units_objective), sum(units_actual), count(units_actual) from darties.sales"
        " where family = 'Magneto' and month_start = '2021-01-01'"
    )
    # the real R_mois column here is read as floats (one cell empty): whole numbers, accepted
    assert january["R_mois"].dtype == "float64" and january["R_mois"].isna().sum() == 1
    assert (int(objective), int(actual), counted) == (
        int(january["O_mois"].sum()),
        int(january["R_mois"].sum()),
        int(january["R_mois"].count()),
    )
