"""The upload sensor: one run per new object version, the newest only, nothing skipped."""

from datetime import UTC, datetime, timedelta

import pytest
from dagster import build_sensor_context

from etl_assets.defs.flights import sensors
from etl_assets.defs.flights import tables as t
from etl_assets.defs.flights.sensors import UploadCursor, flights_upload_sensor, plan_tick
from etl_assets.local import stack as local_stack
from etl_assets.resources.upload_queue import ensure_upload_queue

T0 = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)


def obj(key: str, etag: str, at: datetime) -> dict:
    return {"Key": t.UPLOAD_PREFIX + key, "ETag": f'"{etag}"', "LastModified": at}


def tick(s3, cursor: str | None):
    return flights_upload_sensor(build_sensor_context(cursor=cursor, resources={"s3": s3}))


def test_objects_with_equal_timestamps_are_never_skipped() -> None:
    first = plan_tick([obj("a.csv", "1", T0)], UploadCursor())
    assert first.newest["Key"].endswith("a.csv")
    # b.csv lands in the same second as a.csv, listed only at the next tick
    second = plan_tick([obj("a.csv", "1", T0), obj("b.csv", "2", T0)], first.cursor)
    assert second.newest["Key"].endswith("b.csv") and second.superseded == []
    third = plan_tick([obj("a.csv", "1", T0), obj("b.csv", "2", T0)], second.cursor)
    assert third.newest is None


def test_several_uploads_between_ticks_load_the_newest_and_supersede_the_rest() -> None:
    listed = [obj(f"u{i}.csv", str(i), T0 + timedelta(seconds=i)) for i in range(5)]
    plan = plan_tick(listed, UploadCursor())
    assert plan.newest["Key"].endswith("u4.csv")
    assert plan.superseded == [t.UPLOAD_PREFIX + f"u{i}.csv" for i in range(4)]


def test_an_overwrite_is_a_new_version_and_the_cursor_stays_bounded() -> None:
    plan = plan_tick([obj("a.csv", "1", T0)], UploadCursor())
    again = plan_tick([obj("a.csv", "2", T0 + timedelta(seconds=3))], plan.cursor)
    assert again.newest["ETag"] == '"2"'
    later = T0 + timedelta(hours=2)
    far = plan_tick([obj("a.csv", "2", T0), obj("c.csv", "9", later)], again.cursor)
    assert far.cursor.seen == {t.UPLOAD_PREFIX + "c.csv:9"}  # old versions age out
    assert UploadCursor.parse(far.cursor.dump()) == far.cursor


@pytest.fixture(params=["queue", "listing"])
def announce(request, stack, s3_client, bucket, monkeypatch) -> str:
    """Both ways the sensor learns of uploads: the bucket's SQS notifications, or listing."""
    url = ""
    if request.param == "queue":
        sqs = local_stack.aws_client(stack, "sqs")
        url = ensure_upload_queue(s3_client, sqs, bucket, t.UPLOAD_PREFIX, f"q-{bucket}")
    monkeypatch.setenv("ETL_FLIGHTS_UPLOAD_QUEUE_URL", url)
    return request.param


def test_sensor_requests_each_version_once_against_the_local_s3(
    s3, s3_client, bucket, announce
) -> None:
    key = t.UPLOAD_PREFIX + "flights 2015.csv"
    s3_client.put_object(Bucket=bucket, Key=key, Body=b"v1")
    first = tick(s3, None)
    (request,) = first.run_requests
    etag = s3_client.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
    assert request.run_key == f"{key}:{etag}"
    assert request.run_config["ops"]["flights__flights"]["config"]["key"] == key

    repeat = tick(s3, first.cursor)
    assert not repeat.run_requests  # the same notification twice: nothing new

    s3_client.put_object(Bucket=bucket, Key=key, Body=b"v2")
    overwrite = tick(s3, repeat.cursor)
    (request2,) = overwrite.run_requests
    assert request2.run_key != request.run_key and request2.run_key.startswith(key + ":")

    other = t.UPLOAD_PREFIX + "flights 2015 (2).csv"
    s3_client.put_object(Bucket=bucket, Key=other, Body=b"v3")
    s3_client.put_object(Bucket=bucket, Key=key, Body=b"v4")
    several = tick(s3, overwrite.cursor)
    (request3,) = several.run_requests
    assert request3.run_key.startswith(key + ":")
    config = request3.run_config["ops"]["flights__flights"]["config"]
    assert config["superseded"] == [other]
    assert not tick(s3, several.cursor).run_requests


def test_queue_ticks_do_not_list_the_prefix(s3, s3_client, bucket, stack, monkeypatch) -> None:
    sqs = local_stack.aws_client(stack, "sqs")
    url = ensure_upload_queue(s3_client, sqs, bucket, t.UPLOAD_PREFIX, f"q-{bucket}")
    monkeypatch.setenv("ETL_FLIGHTS_UPLOAD_QUEUE_URL", url)
    first = tick(s3, None)  # the first tick lists (nothing there yet)
    listings = []
    monkeypatch.setattr(sensors, "get_objects", lambda *a, **k: listings.append(1) or [])
    s3_client.put_object(Bucket=bucket, Key=t.UPLOAD_PREFIX + "new.csv", Body=b"x")
    result = tick(s3, first.cursor)
    assert [r.run_key.split(":")[0] for r in result.run_requests] == [t.UPLOAD_PREFIX + "new.csv"]
    assert listings == []
