"""Flights: a vendor re-uploads the full flights file several times a day; each upload replaces
the published snapshot atomically, joined with airlines and airports in reporting views."""

from collections.abc import Iterator

import orjson
from dagster import AssetExecutionContext, AssetKey, Config, asset
from dagster_aws.s3 import S3Resource
from psycopg2 import sql
from pydantic import Field

from etl_assets.checks import (
    ROWS_MATCH_SOURCE,
    blocking_spec,
    combine,
    emit_load_result,
    rows_match_source,
    unique_not_null,
)
from etl_assets.defs.flights import tables as t
from etl_assets.loading.formats import Csv, FileFormat, JsonAuto
from etl_assets.loading.ledger import SourceObject
from etl_assets.loading.loader import CheckOutcome, LoadTarget, ObjectLoader
from etl_assets.loading.sources import list_objects
from etl_assets.resources.tables import TableSpec, ensure_tables
from etl_assets.resources.warehouse import WarehouseResource
from etl_assets.settings import bucket
from etl_assets.sql_files import read_sql

GROUP = "flights"
MAX_REFERENCE_BYTES = 16 * 1024 * 1024


def key_of(name: str) -> AssetKey:
    return AssetKey([t.SCHEMA, name])


class FlightsUpload(Config):
    """Which uploaded object version to load; empty = the newest under the upload prefix."""

    key: str = Field(default="", description="S3 key of the upload")
    etag: str = Field(default="", description="its ETag (the version the sensor saw)")
    superseded: list[str] = Field(
        default_factory=list, description="keys of older uploads this one makes obsolete"
    )


def _reference_asset(table: TableSpec, source_key: str, file_format: FileFormat, doc: str):
    @asset(
        key=key_of(table.name),
        group_name=GROUP,
        description=doc,
        check_specs=[
            blocking_spec(key_of(table.name), ROWS_MATCH_SOURCE, "Rows equal source records."),
            blocking_spec(key_of(table.name), "iata_code_unique_not_null", "Codes are unique."),
        ],
        kinds={"s3", "sql"},
    )
    def _load(context: AssetExecutionContext, warehouse: WarehouseResource, s3: S3Resource):
        ensure_tables(warehouse, t.ALL_TABLES)
        client = s3.get_client()
        objects = [o for o in list_objects(client, bucket(), source_key) if o.key == source_key]
        if not objects:
            raise FileNotFoundError(f"s3://{bucket()}/{source_key} does not exist")
        if warehouse.is_redshift and isinstance(file_format, JsonAuto):
            objects = [array_to_ndjson(client, objects[0])]
        result = ObjectLoader(warehouse, client, context.run_id).load(
            LoadTarget(t.SCHEMA, table.name),
            objects,
            file_format,
            combine(rows_match_source(), unique_not_null("iata_code")),
        )
        yield from emit_load_result(key_of(table.name), result)

    return _load


def array_to_ndjson(s3_client, obj: SourceObject) -> SourceObject:
    """Redshift's COPY cannot read a top-level JSON array: write it back one object per line
    under `_converted/` and load that. Reference files only (refused above 16 MB)."""
    if obj.size > MAX_REFERENCE_BYTES:
        raise ValueError(f"{obj.url}: {obj.size} bytes is too large for a reference array")
    body = s3_client.get_object(Bucket=obj.bucket, Key=obj.key, IfMatch=obj.etag)["Body"]
    records = orjson.loads(body.read())
    if not isinstance(records, list):
        raise ValueError(f"{obj.url}: expected a JSON array of objects")
    converted = b"".join(orjson.dumps(record) + b"\n" for record in records)
    key = f"_converted/{obj.key}"
    s3_client.put_object(Bucket=obj.bucket, Key=key, Body=converted)
    head = s3_client.head_object(Bucket=obj.bucket, Key=key)
    return SourceObject(
        obj.bucket, key, head["ETag"].strip('"'), len(converted), head["LastModified"]
    )


airlines = _reference_asset(
    t.AIRLINES,
    t.AIRLINES_KEY,
    JsonAuto(ignore_case=True),
    "Airline IATA code -> name, from `flights/airlines.json` (a JSON array; keys matched to "
    "columns whatever their case).",
)
airports = _reference_asset(
    t.AIRPORTS,
    t.AIRPORTS_KEY,
    Csv(expected_header=t.AIRPORTS_HEADER),
    "Airport IATA code -> name, city, state, country, latitude, longitude, from "
    "`flights/airports.csv`.",
)


@asset(
    key=key_of("flights"),
    group_name=GROUP,
    check_specs=[
        blocking_spec(
            key_of("flights"),
            ROWS_MATCH_SOURCE,
            "Rows equal the data lines of the uploaded file (checked before publish).",
        )
    ],
    kinds={"s3", "sql"},
)
def flights(
    context: AssetExecutionContext,
    config: FlightsUpload,
    warehouse: WarehouseResource,
    s3: S3Resource,
) -> Iterator:
    """The newest full flights snapshot the vendor uploaded under `flights/uploads/`. Each
    upload replaces the table in one transaction (readers see the old snapshot or the new one,
    never none); an older upload processed late never replaces a newer one."""
    ensure_tables(warehouse, t.ALL_TABLES)
    client = s3.get_client()
    uploads = list_objects(client, bucket(), t.UPLOAD_PREFIX)
    chosen = _choose_upload(uploads, config)
    superseded = [o for o in uploads if o.key in set(config.superseded) and o.key != chosen.key]
    target = LoadTarget(
        t.SCHEMA,
        "flights",
        snapshot=True,
        swap=True,
        dependents=tuple(
            view_statement(warehouse, view) for view in t.VIEWS if view_exists(warehouse, view)
        ),
    )
    result = ObjectLoader(warehouse, client, context.run_id).load(
        target,
        [chosen],
        Csv(expected_header=t.FLIGHTS_HEADER),
        rows_match_source(),
        superseded=superseded,
    )
    extra = {
        "object_key": chosen.key,
        "object_etag": chosen.etag,
        "object_last_modified": str(chosen.last_modified),
    }
    if result.status == "superseded":
        context.log.warning(f"{chosen.key} is older than the published snapshot; not loaded")
        result.checks = _published_rows_check(warehouse)
    yield from emit_load_result(key_of("flights"), result, extra)


def _choose_upload(uploads: list[SourceObject], config: FlightsUpload) -> SourceObject:
    if config.key:
        match = [o for o in uploads if o.key == config.key]
        if not match:
            raise FileNotFoundError(f"upload {config.key} is no longer in the bucket")
        if config.etag and match[0].etag != config.etag:
            raise RuntimeError(
                f"{config.key} was overwritten since it was seen (ETag {config.etag} -> "
                f"{match[0].etag}); the newer version gets its own run"
            )
        return match[0]
    if not uploads:
        raise FileNotFoundError(f"no upload under s3://{bucket()}/{t.UPLOAD_PREFIX}")
    return max(uploads, key=lambda o: (o.last_modified, o.key))


def _published_rows_check(warehouse: WarehouseResource) -> list:
    """For a superseded run: the blocking check, re-run on what stays published."""
    (rows,) = warehouse.query("select count(*) from flights.flights")[0]
    return [CheckOutcome(ROWS_MATCH_SOURCE, True, f"stale upload skipped; {rows} rows stay")]


def view_statement(warehouse: WarehouseResource, name: str) -> sql.Composable:
    statement = sql.SQL(read_sql(t.SCHEMA, name))
    if warehouse.is_redshift:  # late binding: the view follows table names, not identities
        statement = sql.SQL("{} with no schema binding").format(statement)
    return statement


def view_exists(warehouse: WarehouseResource, name: str) -> bool:
    if warehouse.is_redshift:
        return True  # re-running late-binding view DDL is harmless
    (found,) = warehouse.query("select to_regclass(%s) is not null", (f"{t.SCHEMA}.{name}",))[0]
    return found


def _view_asset(name: str, deps: list[str], doc: str):
    @asset(
        key=key_of(name),
        group_name=GROUP,
        deps=[key_of(d) for d in deps],
        description=doc,
        kinds={"sql"},
    )
    def _create(warehouse: WarehouseResource) -> None:
        ensure_tables(warehouse, t.ALL_TABLES)
        warehouse.execute(view_statement(warehouse, name))

    return _create


flights_reporting = _view_asset(
    "flights_reporting",
    ["flights", "airlines", "airports"],
    "View: one row per flight with its date, weekday name, airline name and the origin and "
    "destination airports' name, city, state, latitude and longitude.",
)
delayed_flights_agg = _view_asset(
    "delayed_flights_agg",
    ["flights_reporting"],
    "View: flights not cancelled that arrived late, per flight date, airline and route: number "
    "of flights and total/average air time, distance, arrival delay and each delay cause.",
)

FLIGHTS_ASSETS = [airlines, airports, flights, flights_reporting, delayed_flights_agg]
