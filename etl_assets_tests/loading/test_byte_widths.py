"""Issue 10 item 9: widths count bytes, as on Redshift, so what production would refuse is
refused here too, with its key, line and column."""

import json

import psycopg2
import pytest
from psycopg2 import sql

from etl_assets.defs.sparkify import tables as t
from etl_assets.loading import ledger
from etl_assets.loading.errors import LoadError
from etl_assets.loading.ledger import LedgerEntry, SourceObject
from etl_assets.loading.loader import LoadTarget, ObjectLoader
from etl_assets.loading.sources import list_objects
from etl_assets.loading.tables import ensure_tables, widths_in_bytes
from etl_assets_tests.loading.test_loader import event
from etl_assets_tests.loading.test_refusals import JSONPATHS


def test_a_value_that_fits_in_characters_but_not_in_bytes_is_refused(
    warehouse, s3_client, bucket
) -> None:
    """gender is VARCHAR(8): 'Fémininé' is 8 characters and 10 bytes, which Redshift refuses."""
    ensure_tables(warehouse, t.ALL_TABLES)
    lines = [json.dumps(event(0, gender="F")), json.dumps(event(1, gender="Fémininé"))]
    s3_client.put_object(Bucket=bucket, Key="logs/a.json", Body="\n".join(lines).encode())
    target = LoadTarget("sparkify", "staging_events")
    with pytest.raises(LoadError) as refused:
        ObjectLoader(warehouse, s3_client).load(
            target, list_objects(s3_client, bucket, "logs/"), JSONPATHS
        )
    error = refused.value
    assert (error.key, error.line, error.column) == ("logs/a.json", 2, "gender")
    assert "longer than 8 bytes" in error.reason
    assert warehouse.query("select count(*) from sparkify.staging_events") == [(0,)]

    lines[1] = json.dumps(event(1, gender="Féminin"))  # 8 bytes: loads
    s3_client.put_object(Bucket=bucket, Key="logs/a.json", Body="\n".join(lines).encode())
    ObjectLoader(warehouse, s3_client).load(
        target, list_objects(s3_client, bucket, "logs/"), JSONPATHS
    )
    assert warehouse.query("select count(*) from sparkify.staging_events") == [(2,)]


def test_the_byte_check_follows_a_widened_column(warehouse) -> None:
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        cur.execute("create schema if not exists widths")
        cur.execute("create table widths.t (a varchar(4), b char(2), c integer)")
        widths_in_bytes(cur, "widths", "t")
        cur.execute("insert into widths.t values ('éé', 'é', 1)")  # 4 bytes, 2 bytes
        conn.commit()
        with pytest.raises(psycopg2.errors.CheckViolation, match="bytes_4_a"):
            cur.execute("insert into widths.t (a) values ('ééé')")
        conn.rollback()
        cur.execute("alter table widths.t alter column a type varchar(8)")
        widths_in_bytes(cur, "widths", "t")
        cur.execute("insert into widths.t (a) values ('ééé')")
        cur.execute(
            "select conname from pg_constraint where conrelid = 'widths.t'::regclass"
            " and contype = 'c' order by 1"
        )
        assert [name for (name,) in cur.fetchall()] == ["bytes_2_b", "bytes_8_a"]
        widths_in_bytes(cur, "widths", "t")  # idempotent
        conn.commit()


def test_two_long_column_names_sharing_a_prefix_keep_a_byte_check_each(warehouse) -> None:
    """`bytes_<n>_<column>` cut at 63 bytes used to give both columns one name: the second
    CHECK was never created and its column took values Redshift refuses."""
    first, second = "c" * 56 + "_first", "c" * 56 + "_other"
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        cur.execute("create schema if not exists widths")
        cur.execute(f"create table widths.long ({first} varchar(2), {second} varchar(2))")
        widths_in_bytes(cur, "widths", "long")
        cur.execute(
            "select count(*) from pg_constraint where conrelid = 'widths.long'::regclass"
            " and contype = 'c'"
        )
        assert cur.fetchone() == (2,)
        with pytest.raises(psycopg2.errors.CheckViolation):
            cur.execute(f"insert into widths.long ({second}) values ('éé')")


def test_the_ledger_keeps_a_long_multibyte_error_within_its_width_in_bytes(warehouse) -> None:
    ensure_tables(warehouse, [])
    source = SourceObject("b", "données/été.csv", "e1", 1)
    reason = "valeur refusée: " + "é" * 3000  # 6,000+ bytes, 3,016 characters
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        entries = [LedgerEntry(source, ledger.REJECTED, error=reason)]
        ledger.record(
            cur, entries, load_id="l1", target_table="x.y", partition_key=None, run_id=None
        )
        conn.commit()
    ((size, text),) = warehouse.query(
        sql.SQL("select octet_length(error), error from {} where load_id = 'l1'").format(
            ledger.LEDGER
        )
    )
    assert size <= ledger.ERROR_BYTES and text.endswith("é…")
    assert text.startswith("valeur refusée: éé")


@pytest.mark.parametrize("mode", ["replace", "merge"])
def test_a_multibyte_value_in_a_char_column_is_refused_naming_the_column(
    warehouse, s3_client, bucket, mode
) -> None:
    """Redshift's CHAR holds single-byte characters only (a VARCHAR holds multibyte ones:
    https://docs.aws.amazon.com/redshift/latest/dg/r_Character_types.html): 'é' fits CHAR(2)
    in bytes and is still refused in production, so here too, with line and column, whether
    COPY fills the table or a load's shadow."""
    from etl_assets.loading.formats import Csv
    from etl_assets.loading.publish import MergeByKey, Replace
    from etl_assets.loading.tables import as_on_redshift

    ensure_tables(warehouse, [])  # the ledger
    with warehouse.get_connection() as conn, conn.cursor() as cur:
        cur.execute("create schema s")
        cur.execute("create table s.codes (id integer primary key, code char(2))")
        as_on_redshift(cur, "s", "codes")  # as a table is created
        conn.commit()
    s3_client.put_object(Bucket=bucket, Key="c/codes.csv", Body="id,code\n1,ab\n2,é\n".encode())
    publish = Replace() if mode == "replace" else MergeByKey(("id",))
    with pytest.raises(LoadError) as refused:
        ObjectLoader(warehouse, s3_client).load(
            LoadTarget("s", "codes", publish),
            list_objects(s3_client, bucket, "c/"),
            Csv(expected_header="id,code"),
        )
    error = refused.value
    assert (error.line, error.column) == (3, "code"), str(error)
    assert "single-byte" in error.reason
