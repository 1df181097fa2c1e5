"""Checks generated from a table's declaration, run through Dagster on the real PostgreSQL."""

from pathlib import Path

from dagster import DagsterInstance, materialize

from etl_assets.lib.assets import table_from_select
from etl_assets.lib.checks import reference_checks
from etl_assets.loading.tables import Reference, TableSpec
from etl_assets_tests.helpers import check_results, failure_message

DDL = {
    "parent": "create table if not exists shop.parent (id integer)",
    "child": "create table if not exists shop.child"
    " (id integer, parent_id integer, note varchar(8))",
}
SELECT = {
    "parent": "select 1 as id union all select 2",
    "child": "select 1, 1, 'a' union all select 2, 9, null union all select 3, 9, 'c'",
}


def declared(folder: Path, **child) -> tuple[TableSpec, TableSpec]:
    for name in DDL:
        (folder / f"{name}.ddl.sql").write_text(DDL[name])
        (folder / f"{name}.select.sql").write_text(SELECT[name])
    parent = TableSpec("shop", "parent", folder, key=("id",))
    return parent, TableSpec("shop", "child", folder, **child)


def run(warehouse, parent: TableSpec, child: TableSpec):
    assets = [
        table_from_select(parent, deps=[], description="parents"),
        table_from_select(child, deps=[parent], description="children"),
        *reference_checks(child),
    ]
    return materialize(
        assets,
        resources={"warehouse": warehouse},
        instance=DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def test_a_declared_not_null_column_blocks_the_publish(warehouse, tmp_path: Path) -> None:
    parent, child = declared(tmp_path, key=("id",), not_null=("note",))
    result = run(warehouse, parent, child)
    assert not result.success
    assert "note: 1 nulls" in failure_message(result)
    assert check_results(result)[("shop/child", "note_not_null")] is False
    assert warehouse.query("select count(*) from shop.child") == [(0,)]  # nothing published


def test_a_composite_key_is_checked_as_one(warehouse, tmp_path: Path) -> None:
    parent, child = declared(tmp_path, key=("parent_id", "note"))
    result = run(warehouse, parent, child)
    assert check_results(result)[("shop/child", "parent_id_note_unique_not_null")] is False
    assert "1 rows with a null key" in failure_message(result)


def test_a_declared_reference_lists_unknown_values_with_their_rows(warehouse, tmp_path) -> None:
    reference = Reference(("parent_id",), "shop.parent", "id")
    parent, child = declared(tmp_path, key=("id",), references=(reference,))
    result = run(warehouse, parent, child)
    evaluation = next(
        e for e in result.get_asset_check_evaluations() if e.check_name == "references_parent"
    )
    assert not evaluation.passed and evaluation.severity.value == "ERROR"
    assert evaluation.description == "not in shop.parent: parent_id=9 (2 rows)"
    assert result.success  # checked after publish: reported, the run itself succeeds
