"""The date and timestamp fields of a CSV, checked as it streams (`csv_stream.DateFields`),
against Python's csv module on seeded random files: quoted commas, quotes and line breaks,
records split across reads of every size."""

import csv
import io
import random
import re

import pytest

from etl_assets.loading.csv_stream import CountingReader, DateFields
from etl_assets.loading.errors import LoadError

VALID_AT = ["2026-11-01 10:00:00", "2026-11-01T10:00:00.250", "", '"2026-11-02 00:00:00"']
INVALID_AT = ["today", "2026-11-01 10:00:00+05:00", "2026-11-01 10:00:00-05", "epoch", "now Z"]
VALID_DAY = ["2026-11-01", ""]
INVALID_DAY = ["Nov 1 2026", "infinity", "tomorrow"]
NOTES = ["plain", "a, b", 'say "hi"', "two\nlines", "today, epoch", "", "x" * 50]
FIELDS = {2: ("at", "timestamp"), 3: ("day", "date")}
_ALLOWED = re.compile(r'[0-9\-:. T"\r]*')


def refused(value: str) -> bool:
    return not _ALLOWED.fullmatch(value) or value.count("-") > 2


def random_csv(rng: random.Random) -> tuple[bytes, int | None]:
    """A CSV body and the line of its first refused date field (None: all valid)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for i in range(rng.randint(1, 40)):
        bad = rng.random() < 0.08
        at = rng.choice(INVALID_AT if bad and rng.random() < 0.5 else VALID_AT).strip('"')
        day = rng.choice(INVALID_DAY if bad and refused(at) is False else VALID_DAY)
        writer.writerow([i, rng.choice(NOTES), at, day])
    body = buffer.getvalue()
    expected = None
    reader = csv.reader(io.StringIO(body))
    for row in reader:
        if refused(row[2]) or refused(row[3]):
            expected = reader.line_num
            break
    return body.encode(), expected


class Chunked(io.RawIOBase):
    def __init__(self, data: bytes, size: int) -> None:
        self.data, self.size, self.position = data, size, 0

    def read(self, size: int = -1) -> bytes:
        piece = self.data[self.position : self.position + self.size]
        self.position += len(piece)
        return piece


@pytest.mark.parametrize("seed", range(60))
def test_date_fields_are_checked_like_a_csv_parser_would_read_them(seed: int) -> None:
    rng = random.Random(seed)
    body, expected = random_csv(rng)
    size = rng.choice([1, 3, 7, 16, 64, 1 << 20])
    reader = CountingReader(Chunked(body, size), "t.csv", dates=DateFields(FIELDS))
    try:
        while reader.read(size):
            pass
    except LoadError as error:
        assert expected is not None, (body, error)
        assert error.line == expected and error.column in ("at", "day"), (body, size, error)
        return
    assert expected is None, (body, size)
