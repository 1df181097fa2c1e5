"""A warehouse that records what the Redshift dialect sends instead of executing it.

Each statement is rendered with a real PostgreSQL connection's quoting (psycopg2's mogrify).
A COPY reads its manifest and the objects it names from S3 (moto), as Redshift would; `answers`
answers the statements, and what it leaves unanswered of a SYS_LOAD_DETAIL query is answered
the way the view's page says, by running the query itself on a real table of the view's
columns (https://docs.aws.amazon.com/redshift/latest/dg/SYS_LOAD_DETAIL.html): a row per file
a COPY read, `file_name` char(256) (a longer URL is cut), `lines_scanned` the lines read, and a
`query_id` that is not the id `pg_last_copy_id()` returns (a SYS query_id and an STL query id
are different identifiers: https://docs.aws.amazon.com/redshift/latest/dg/r_STL_QUERY.html);
`load_detail_lag` queries of the view see nothing yet (None: never). Nothing checks that
Redshift would accept a statement: the statement rules (`test_redshift_statements`) and
`make test-redshift` do.
"""

import itertools
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar

import psycopg2

from etl_assets.resources.warehouse import WarehouseResource

ROLE = "arn:aws:iam::123456789012:role/etl-assets-copy"
_LINE_COMMENT = re.compile(r"--[^\n]*")
_CONNECTIONS = itertools.count(1)


@dataclass(frozen=True)
class Sent:
    """One statement as sent: its text, its connection, whether that was in autocommit."""

    text: str
    connection: int
    autocommit: bool


class RecordingCursor:
    """Records each statement; `answers` answers it (an exception it returns is raised)."""

    def __init__(self, renderer, log: list[str], answers, connection) -> None:
        self.renderer, self.log, self.answers = renderer, log, answers
        self._connection = connection
        self.connection = renderer.connection  # its encoding renders multi-row inserts
        self._rows: list[tuple] = []
        self.rowcount = 0
        self.description: list[tuple] | None = None

    def execute(self, statement, params=None) -> None:
        rendered = self.renderer.mogrify(statement, params).decode()
        # one line per statement: a line comment becomes a block comment (it would otherwise
        # swallow what follows it), kept where it was for the rules to see
        text = " ".join(_LINE_COMMENT.sub(_as_block_comment, rendered).split())
        self.log.append(text)
        RecordingWarehouse.sent.append(
            Sent(text, self._connection.number, self._connection.autocommit)
        )
        answer = self.answers(text)
        if text.startswith("COPY "):
            RecordingWarehouse.copies.append(_read_manifest(text))
        if isinstance(answer, Exception):
            raise answer
        self._rows = answer
        if not self._rows and text.startswith("select sum(case when"):
            self._rows = [(0,)]  # a partition load's rows all inside the partition
        if not self._rows and "from sys_load_detail" in text:
            self._rows = _sys_load_detail(self.renderer, text)
        if re.match(r'select \* from [\w".-]+ limit 0$', text):
            self.description = [(c,) for c in RecordingWarehouse.columns]
        self.rowcount = 5

    def mogrify(self, statement, params=None) -> bytes:
        return self.renderer.mogrify(statement, params)

    def executemany(self, statement, rows) -> None:
        for row in rows:
            self.execute(statement, row)

    def fetchall(self) -> list[tuple]:
        return self._rows

    def fetchone(self) -> tuple | None:
        return self._rows[0] if self._rows else None

    def copy_expert(self, *args, **kwargs) -> None:
        raise AssertionError("Redshift pulls from S3; nothing is streamed through the client")

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


def _as_block_comment(comment: re.Match) -> str:
    return "/*" + comment.group(0)[2:].replace("*/", "* /") + "*/"


STL_COPY_ID = 5437  # what pg_last_copy_id() returns: an STL query id


def _sys_load_detail(renderer, text: str) -> list[tuple]:
    """The query run on a session table shaped like SYS_LOAD_DETAIL holding what the COPYs
    read so far, unless the view is not filled yet (`load_detail_lag`)."""
    RecordingWarehouse.load_detail_queries += 1
    lag = RecordingWarehouse.load_detail_lag
    filled = lag is not None and RecordingWarehouse.load_detail_queries > lag
    renderer.execute(
        "create temp table if not exists sys_load_detail (user_id integer, query_id integer,"
        " file_name character(256), bytes_scanned integer, lines_scanned integer)"
    )
    renderer.execute("delete from sys_load_detail")
    for number, copy in enumerate(RecordingWarehouse.copies if filled else []):
        query_id = STL_COPY_ID + RecordingWarehouse.sys_query_id_offset + number
        for url, lines in copy["lines"].items():
            renderer.execute(
                "insert into sys_load_detail values (100, %s, left(%s, 256), %s, %s)",
                (query_id, url, len(copy["bodies"][url]), lines),
            )
    renderer.execute(text.replace("pg_last_copy_id()", str(STL_COPY_ID)))
    return renderer.fetchall()


def _read_manifest(copy: str) -> dict:
    """What a COPY from a manifest reads: the manifest, then every object it names."""
    url = re.search(r"FROM '(s3://[^']+)'", copy).group(1)
    bucket, key = url.removeprefix("s3://").split("/", 1)
    s3 = RecordingWarehouse.s3
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    bodies = {}
    for entry in manifest["entries"]:
        b, k = entry["url"].removeprefix("s3://").split("/", 1)
        bodies[entry["url"]] = s3.get_object(Bucket=b, Key=k)["Body"].read()
    lines = {u: body.count(b"\n") + (not body.endswith(b"\n")) for u, body in bodies.items()}
    return {"manifest": manifest, "bodies": bodies, "lines": lines}


class RecordingWarehouse(WarehouseResource):
    log: ClassVar[list[str]] = []
    renderer_dsn: ClassVar[str] = ""
    answers: ClassVar = staticmethod(lambda text: [])
    commit_errors: ClassVar[list[Exception]] = []  # raised by the next commits, in order
    sent: ClassVar[list[Sent]] = []  # every statement with its connection
    copies: ClassVar[list[dict]] = []  # what each COPY read: manifest, bodies, lines per URL
    columns: ClassVar[list[str]] = ["a", "b"]  # the staging relation's columns
    # SYS_LOAD_DETAIL: queries answered with nothing before its rows show (None: never), and
    # how far its query_id is from pg_last_copy_id()'s (0: the ids happen to agree)
    load_detail_lag: ClassVar[int | None] = 0
    load_detail_queries: ClassVar[int] = 0
    sys_query_id_offset: ClassVar[int] = 1_000_000
    s3: ClassVar = None

    @contextmanager
    def get_connection(self) -> Iterator:
        real = psycopg2.connect(self.renderer_dsn)
        renderer = real.cursor()
        log = type(self).log

        class Connection:
            _autocommit = False
            number = next(_CONNECTIONS)  # never reused, unlike id()

            @property
            def autocommit(self) -> bool:
                return self._autocommit

            @autocommit.setter
            def autocommit(self, on: bool) -> None:
                self._autocommit = on
                log.append(f"AUTOCOMMIT {'ON' if on else 'OFF'}")

            def cursor(self):
                return RecordingCursor(renderer, log, RecordingWarehouse.answers, self)

            def commit(self):
                if RecordingWarehouse.commit_errors:
                    log.append("COMMIT (cancelled)")
                    raise RecordingWarehouse.commit_errors.pop(0)
                log.append("COMMIT")

            def rollback(self):
                log.append("ROLLBACK")

        try:
            yield Connection()
        finally:
            real.close()
