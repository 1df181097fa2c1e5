import io
import json

from etl_assets.loading.json_stream import JsonCopyReader


def rows(
    data: bytes, read_size: int = 7, chunk: int = 5
) -> tuple[list[tuple[int, dict]], JsonCopyReader]:
    reader = JsonCopyReader(io.BytesIO(data), chunk_bytes=chunk)
    out = b""
    while piece := reader.read(read_size):
        out += piece
    parsed = []
    for line in out.decode().splitlines():
        number, value = line.split("\x02")
        parsed.append((int(number), json.loads(value)))
    return parsed, reader


def test_newline_delimited_objects_keep_their_line_numbers() -> None:
    data = (
        b'{"a": 1}\n{"a": "x}"}\n\n{"a": 3}'  # no final newline, a blank line, a brace in a string
    )
    parsed, reader = rows(data)
    assert parsed == [(1, {"a": 1}), (2, {"a": "x}"}), (4, {"a": 3})]
    assert [reader.source_line(n) for n in (1, 2, 3)] == [1, 2, 4]


def test_pretty_printed_objects_become_one_row_each() -> None:
    first = json.dumps({"title": 'Face {the} "Ashes"', "n": [1, {"b": 2}]}, indent=2)
    second = json.dumps({"title": "two"}, indent=2)
    parsed, reader = rows(f"{first}\n{second}\n".encode())
    first_lines = first.count("\n") + 1
    assert parsed == [(1, json.loads(first)), (first_lines + 1, json.loads(second))]
    assert reader.source_line(2) == first_lines + 1
    assert reader.records == 2


def test_an_unclosed_value_is_passed_on_for_the_parser_to_refuse() -> None:
    reader = JsonCopyReader(io.BytesIO(b'{"a": 1}\n{"a":\n  2'))
    out = reader.read(-1).decode().splitlines()
    assert out[-1] == '2\x02{"a": 2'
