"""Fixtures of the loading tests."""

import pytest

from etl_assets_tests.loading.recording import RecordingWarehouse


@pytest.fixture
def redshift(stack, s3_client) -> type[RecordingWarehouse]:
    RecordingWarehouse.log = []
    RecordingWarehouse.commit_errors = []
    RecordingWarehouse.copies = []
    RecordingWarehouse.sent = []
    RecordingWarehouse.columns = ["a", "b"]
    RecordingWarehouse.load_detail_lag = 0
    RecordingWarehouse.load_detail_queries = 0
    RecordingWarehouse.sys_query_id_offset = 1_000_000
    RecordingWarehouse.s3 = s3_client
    RecordingWarehouse.renderer_dsn = stack.dsn()
    return RecordingWarehouse
