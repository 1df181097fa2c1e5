"""Darties on the real stack, driven as in production: workbooks land under `darties/`, the
upload sensor ticks, its runs convert, load and derive the star."""

import json
import os
import re
import resource
import subprocess
import sys
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
from etl_assets.defs.darties.workbooks import (
    WorkbookError,
    WorkbookName,
    parse_name,
    read_workbook,
)
from etl_assets_tests.defs.darties import fuzz, hostile
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


# Hostile workbooks (see hostile.py): refused naming where, never a crash or a wrong value.

GOOD = hostile.good_workbook()


def _raw(sheet: str, ref: str, cell_xml: str):
    return lambda: hostile.with_raw_cell(GOOD, sheet, ref, cell_xml)


def _lying_dimension() -> bytes:
    """A cell at Z6000 in a sheet whose <dimension> says A1:C13."""
    body = hostile.with_cell(GOOD, "V_Fours", "Z6000", 1)
    return hostile.with_sheet_xml(
        body,
        "V_Fours",
        lambda xml: re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:C13"', xml),
    )


def _no_dimension() -> bytes:
    body = hostile.with_cell(GOOD, "V_Fours", "GS2", 1)  # column 201
    return hostile.with_sheet_xml(
        body, "V_Fours", lambda xml: re.sub(rb"<dimension [^>]*/>", b"", xml)
    )


HOSTILE = {  # case -> (file name, body, where: reason)
    "units inf": (
        "Mars_2021.xlsx",
        _raw("V_Hifi", "C3", hostile.number_cell("C3", "inf")),
        "sheet V_Hifi, row 3, column R_mois: inf is not a finite number",
    ),
    "units 1e20": (
        "Mars_2021.xlsx",
        _raw("V_Hifi", "C3", hostile.number_cell("C3", "1e20")),
        "sheet V_Hifi, row 3, column R_mois: 1e+20 is out of range",
    ),
    "units 9.3e18": (
        "Mars_2021.xlsx",
        _raw("V_Magneto", "B5", hostile.number_cell("B5", "9.3e18")),
        "sheet V_Magneto, row 5, column O_mois: 9.3e+18 is out of range",
    ),
    "units TRUE": (
        "Mars_2021.xlsx",
        _raw("V_Fours", "B2", '<c r="B2" t="b"><v>1</v></c>'),
        "sheet V_Fours, row 2, column O_mois: TRUE is a boolean, not a number",
    ),
    "turnover text inf": (
        "Mars_2021.xlsx",
        _raw("CA_Fours", "C7", '<c r="C7" t="inlineStr"><is><t>inf</t></is></c>'),
        "sheet CA_Fours, row 7, column R_mois: 'inf' is not a number",
    ),
    "error value": (
        "Mars_2021.xlsx",
        _raw("MB_Hifi", "C4", '<c r="C4" t="e"><v>#DIV/0!</v></c>'),
        "sheet MB_Hifi, row 4, column R_mois: error value #DIV/0! in C4",
    ),
    "formula without a value": (
        "Mars_2021.xlsx",
        lambda: hostile.with_cell(GOOD, "CA_Hifi", "C4", "=B4*2"),
        "sheet CA_Hifi, row 4, column R_mois: a formula without a computed value in C4",
    ),
    "merged cells in the table": (
        "Mars_2021.xlsx",
        lambda: hostile.merged(GOOD, "V_Hifi", "B3:C3"),
        "sheet V_Hifi, row 3, column O_mois: merged cells B3:C3 inside the table",
    ),
    "control character in a city": (
        "Mars_2021.xlsx",
        _raw("darties", "A3", '<c r="A3" t="inlineStr"><is><t>Ville_x0001_0001</t></is></c>'),
        "sheet darties, row 3, column Villes: the text holds a control character (U+0001)",
    ),
    "year 0000": (
        "0000_HISTO.xlsx",
        lambda: hostile.good_workbook("histo"),
        "file name: year 0000 is not from 1900 to 2100",
    ),
    "a cell at Z200000": (
        "Mars_2021.xlsx",
        lambda: hostile.far_cell("Z200000"),
        "sheet V_Fours: the sheet declares 200,000 rows x 26 columns (dimension A1:Z200000;"
        " at most 5,000 rows x 200 columns)",
    ),
    "a dimension that lies": (
        "Mars_2021.xlsx",
        _lying_dimension,
        "sheet V_Fours, row 6000: the sheet goes beyond row 5,000",
    ),
    "no dimension, a cell in column 201": (
        "Mars_2021.xlsx",
        _no_dimension,
        "sheet V_Fours, row 2, column GS: the sheet goes beyond column GR (200 columns)",
    ),
    "200 MB of sheet XML in a 200 KB file": (
        "Mars_2021.xlsx",
        lambda: hostile.padded_sheet_xml(GOOD),
        "sheet V_Fours: 209,717,395 bytes of XML or more (at most 16 MB per part)",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_workbook_is_refused_naming_where(case) -> None:
    name, body, reason = HOSTILE[case]
    with pytest.raises(WorkbookError) as refused:
        read_workbook(body(), name)
    assert str(refused.value).startswith(reason), str(refused.value)


@pytest.mark.parametrize(
    "case", ["units inf", "formula without a value", "a cell at Z200000", "year 0000"]
)
def test_a_hostile_workbook_is_refused_by_its_run_and_the_ledger(
    case, sample, warehouse, s3, s3_client, bucket, instance
) -> None:
    _, _, cursor = sample
    name, body, reason = HOSTILE[case]
    before = warehouse.query("select * from darties.workbook_sales order by 1, 2, 3, 4, 5, 6, 7")
    key = f"darties/{name}"
    s3_client.put_object(Bucket=bucket, Key=key, Body=body())
    (run,) = tick(warehouse, s3, instance, cursor)[0]
    assert not run.success
    assert f"{key}: {reason}" in failure_message(run)
    assert [(t, s) for t, s, _ in ledger(warehouse, key)] == [
        ("darties.workbook_sales", "rejected"),
        ("darties.workbook_stores", "rejected"),
    ]
    after = warehouse.query("select * from darties.workbook_sales order by 1, 2, 3, 4, 5, 6, 7")
    assert after == before


def test_a_cell_at_xfd1048576_is_refused_by_a_process_that_survives(tmp_path) -> None:
    """calamine reserved ~512 GiB for this 12 KB workbook and aborted the process. Read in
    a child process (a crash shows as a signal, not as pytest dying), its memory capped."""
    path = tmp_path / "Mars_2021.xlsx"
    path.write_bytes(hostile.far_cell("XFD1048576"))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "etl_assets_tests.defs.darties.hostile",
            "read",
            str(path),
            path.name,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, 4 * 2**30)),
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["refused"] == (
        "sheet V_Fours: the sheet declares 1,048,576 rows x 16,384 columns (dimension"
        " A1:XFD1048576; at most 5,000 rows x 200 columns)"
    )
    assert outcome["peak_mb"] < 400


def test_file_names_follow_one_rule_for_case() -> None:
    assert parse_name("2019_HISTO.XLSX") == WorkbookName("histo", 2019)
    assert parse_name("Janvier_2021.XLSX") == WorkbookName("monthly", 2021, 1)
    assert parse_name("AOÛT_2021.Xlsx") == WorkbookName("monthly", 2021, 8)
    with pytest.raises(WorkbookError, match="year 0000 is not from 1900 to 2100"):
        parse_name("Janvier_0000.xlsx")


def test_extra_sheets_and_hidden_rows_load_with_a_warning(
    sample, warehouse, s3, s3_client, bucket, instance
) -> None:
    _, _, cursor = sample

    def edit(book):
        book.copy_worksheet(book["V_Fours"]).title = "V_Fours (2)"
        book["V_Hifi"].row_dimensions[5].hidden = True
        book["CA_Fours"].column_dimensions["C"].hidden = True

    key = "darties/Mars_2021.XLSX"  # the extension in capitals, as Excel on Windows may save
    s3_client.put_object(Bucket=bucket, Key=key, Body=hostile.edited(GOOD, edit))
    (run,) = tick(warehouse, s3, instance, cursor)[0]
    assert run.success
    (warned,) = [
        e for e in run.get_asset_check_evaluations() if e.check_name == "no_hidden_or_extra_content"
    ]
    assert not warned.passed
    assert warned.description == (
        f"{key}: sheet 'V_Fours (2)' ignored (not one of the ten sheets read); "
        f"{key}: sheet V_Hifi: hidden rows 5 (read all the same); "
        f"{key}: sheet CA_Fours: hidden columns R_mois (read all the same)"
    )
    assert warehouse.query(
        "select count(*) from darties.workbook_sales where source_key = %s", (key,)
    ) == [(12 * 3,)]


# Seeded fuzz (fuzz.py): ETL_FUZZ_CASES workbooks (20 by default) read in a child process,
# the first ETL_FUZZ_RUNS of them (4) also through the sensor and its runs.
FUZZ_SEED = int(os.environ.get("ETL_FUZZ_SEED", "20250607"))
FUZZ_CASES = int(os.environ.get("ETL_FUZZ_CASES", "20"))
FUZZ_RUNS = int(os.environ.get("ETL_FUZZ_RUNS", "4"))


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory) -> tuple[Path, list[dict]]:
    folder = tmp_path_factory.mktemp("fuzz")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "etl_assets_tests.defs.darties.fuzz",
            str(FUZZ_SEED),
            str(FUZZ_CASES),
            str(folder),
        ],
        capture_output=True,
        text=True,
        timeout=60 + FUZZ_CASES,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, 4 * 2**30)),
    )
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    started = [line for line in lines if line.get("started")]
    assert done.returncode == 0, (
        f"seed {FUZZ_SEED}: the reading process died ({done.returncode}) in case"
        f" {started[-1] if started else None}: {done.stderr[-2000:]}"
    )
    return folder, [line for line in lines if not line.get("started")]


def test_fuzzed_workbooks_are_loaded_as_read_or_refused_naming_where(fuzzed) -> None:
    _, outcomes = fuzzed
    assert len(outcomes) == FUZZ_CASES
    for case in outcomes:
        context = f"seed {FUZZ_SEED} case {case['case']} ({case['kinds']}, {case['name']})"
        assert case["outcome"] in ("loaded", "refused"), f"{context}: {case.get('traceback')}"
        if case["outcome"] == "refused":
            assert fuzz.WHERE.match(case["where"]) and case["reason"], (context, case)
            if not case["where"]:  # the file as a whole
                assert case["reason"].startswith("not an Excel workbook"), (context, case)
        else:  # what is loaded is what openpyxl reads in the same file
            assert case["oracle"] in ("equal", "unavailable"), (context, case["oracle"])
    # the fixed first cases go through every mutation once: most are refused
    assert sum(c["outcome"] == "refused" for c in outcomes) >= min(FUZZ_CASES, 10)


def test_fuzzed_workbooks_get_one_verdict_each_through_their_runs(
    fuzzed, sample, warehouse, s3, s3_client, bucket, instance
) -> None:
    folder, outcomes = fuzzed
    _, _, cursor = sample
    loaded = [c for c in outcomes if c["outcome"] == "loaded"]
    refused = [c for c in outcomes if c["outcome"] == "refused"]
    chosen = loaded[: FUZZ_RUNS // 2] + refused[: FUZZ_RUNS - min(len(loaded), FUZZ_RUNS // 2)]
    others = "select * from darties.workbook_sales where source_key not like 'darties/fuzz/%%'"
    before = sorted(warehouse.query(others))
    keys = {}
    for case in chosen:
        key = f"darties/fuzz/{case['case']:04d}/{case['name']}"
        path = folder / f"{case['case']:04d}" / case["name"]
        s3_client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        keys[key] = case
    results, _ = tick(warehouse, s3, instance, cursor)
    assert len(results) == len(chosen)
    failures = "\n".join(failure_message(r) for r in results if not r.success)
    for key, case in keys.items():
        status = "loaded" if case["outcome"] == "loaded" else "rejected"
        assert [(t, s) for t, s, _ in ledger(warehouse, key)] == [
            ("darties.workbook_sales", status),
            ("darties.workbook_stores", status),
        ], (FUZZ_SEED, case)
        published = warehouse.query(
            "select count(*) from darties.workbook_sales where source_key = %s", (key,)
        )
        assert published == [(case.get("sales_rows", 0),)], (FUZZ_SEED, case)
        if status == "rejected":
            assert f"{key}: " in failures, (FUZZ_SEED, case)
    assert sorted(warehouse.query(others)) == before


def test_a_workbooks_materialization_counts_the_tables_rows_and_this_loads(
    sample, warehouse
) -> None:
    """`workbook_sales` showed the last workbook's rows as the table's count: the count is the
    table's, and the workbook's own rows are `rows_this_load`."""
    _, results, _ = sample
    last = results[-1]
    (event,) = [
        e
        for e in last.get_asset_materialization_events()
        if e.asset_key.path[-1] == "workbook_sales"
    ]
    metadata = event.materialization.metadata
    (table_rows,) = warehouse.query("select count(*) from darties.workbook_sales")[0]
    assert metadata["dagster/row_count"].value == table_rows
    assert 0 < metadata["rows_this_load"].value < table_rows
