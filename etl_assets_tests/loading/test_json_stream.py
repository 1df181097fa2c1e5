import io
import json

import pytest

from etl_assets.loading.errors import LoadError
from etl_assets.loading.json_stream import JsonRowReader, copy_text

UNEXPECTED = "unexpected character, expected a JSON value"


def read_all(reader: JsonRowReader, size: int = 7) -> list[list[str]]:
    out = b""
    while piece := reader.read(size):
        out += piece
    return [line.split("\t") for line in out.decode().splitlines()]


def reader_for(data: bytes, paths, chunk: int = 5) -> JsonRowReader:
    return JsonRowReader(io.BytesIO(data), "k.json", paths, chunk_bytes=chunk)


def test_newline_delimited_objects_map_by_path_and_keep_line_numbers() -> None:
    data = b'{"a": 1, "b": "x}"}\n\n{"b": null, "a": 2.5}\n{"a": 3, "c": {"d": [1]}}'
    reader = reader_for(data, [("a",), ("b",)])
    assert read_all(reader) == [["1", "x}"], ["2.5", "\\N"], ["3", "\\N"]]
    assert [reader.source_line(n) for n in (1, 2, 3)] == [1, 3, 4]
    assert reader.records == 3
    assert reader.missing_and_unknown(frozenset({"a", "b"})) == (("b",), ("c",))


def test_pretty_printed_objects_become_one_row_each() -> None:
    first = json.dumps({"title": 'Face {the} "Ashes"', "n": [1, {"b": 2}]}, indent=2)
    second = json.dumps({"title": "two"}, indent=2)
    reader = reader_for(f"{first}\n{second}\n".encode(), [("title",), ("n", "1", "b")])
    assert read_all(reader) == [['Face {the} "Ashes"', "2"], ["two", "\\N"]]
    assert reader.source_line(2) == first.count("\n") + 2


def test_values_are_escaped_for_copy_text_format() -> None:
    assert copy_text("tab\there\\ and\nnewline") == "tab\\there\\\\ and\\nnewline"
    assert copy_text(246.30812) == "246.30812"
    assert copy_text(1540919166796.0) == "1540919166796.0"
    assert copy_text(True) == "true"
    assert copy_text({"k": [1, "é"]}) == '{"k":[1,"é"]}'


@pytest.mark.parametrize(
    ("data", "line", "reason"),
    [
        (
            b'{"a": 1}\n{"a": }\n',
            2,
            "invalid JSON: unexpected character, expected a JSON value at column 7",
        ),
        (b'{"a": 1}\n[1, 2]\n', 2, "not a JSON object: list"),
        (b'{\n "a": 1\n}\n{\n "a":\n  2', 4, "file ends inside a JSON value"),
    ],
)
def test_refusals_name_the_line_and_reason(data: bytes, line: int, reason: str) -> None:
    with pytest.raises(LoadError) as failure:
        read_all(reader_for(data, [("a",)]))
    assert (failure.value.key, failure.value.line, failure.value.reason) == ("k.json", line, reason)


def test_a_cut_line_in_a_newline_delimited_file_is_refused_at_that_line() -> None:
    data = b'{"a": 1}\n{"a": 2, "b": "cut\n{"a": 3}\n'
    with pytest.raises(LoadError) as failure:
        read_all(reader_for(data, [("a",)]))
    assert failure.value.line == 2
    assert failure.value.reason.startswith("invalid JSON:")


def test_a_top_level_array_is_refused_as_redshift_does() -> None:
    pretty = json.dumps([{"IATA_CODE": "UA", "AIRLINE": "United"}, {"IATA_CODE": "AA"}], indent=2)
    with pytest.raises(LoadError) as refused:
        read_all(JsonRowReader(io.BytesIO(pretty.encode()), "a.json", [("a",)], 4))
    assert refused.value.line == 1 and "top-level JSON array" in refused.value.reason
    one_line = JsonRowReader(io.BytesIO(b'[{"a": 1},{"a": 2}]'), "b.json", [("a",)], 4)
    with pytest.raises(LoadError, match="top-level JSON array"):
        read_all(one_line)


def test_garbage_between_objects_is_refused_with_its_line() -> None:
    data = b'{\n "a": 1\n}\nnot json\n'
    with pytest.raises(LoadError) as failure:
        read_all(reader_for(data, [("a",)]))
    assert failure.value.line == 4
    assert "between JSON objects" in failure.value.reason


def test_a_line_nested_deeper_than_pythons_parser_reads_is_refused_with_its_line() -> None:
    """orjson reads 1,000 nested objects; the duplicate-key check's parser (Python's) stops
    earlier with RecursionError, which escaped as a crash instead of a refusal."""
    import io

    from etl_assets.loading.errors import LoadError
    from etl_assets.loading.json_stream import JsonRowReader

    deep = '{"a": ' + '{"b":' * 1000 + "1" + "}" * 1000 + "}"
    text = '{"a": 1}\n' + deep + "\n"
    reader = JsonRowReader(io.BytesIO(text.encode()), "deep.json", [("a",)], 1 << 20)
    with pytest.raises(LoadError) as refused:
        reader.read()
    assert refused.value.line == 2 and "nested too deep" in refused.value.reason
