import pytest

from etl_assets.defs.sparkify.sample_data import jsonpaths_document
from etl_assets.loading.formats import JsonPaths, parse_jsonpath


@pytest.mark.parametrize(
    ("expression", "path"),
    [
        ("$['artist']", ("artist",)),
        ('$["user id"]', ("user id",)),
        ("$.userAgent", ("userAgent",)),
        ("$['a']['b'][0]", ("a", "b", "0")),
        ("$.a.b", ("a", "b")),
    ],
)
def test_jsonpath_steps(expression: str, path: tuple[str, ...]) -> None:
    assert parse_jsonpath(expression) == path


@pytest.mark.parametrize("expression", ["artist", "$", "$[artist]", "$['a'] junk"])
def test_jsonpath_refuses_what_it_cannot_read(expression: str) -> None:
    with pytest.raises(ValueError, match="JSONPath"):
        parse_jsonpath(expression)


def test_generated_jsonpaths_file_maps_every_log_key_in_order() -> None:
    parsed = JsonPaths.parse("k", jsonpaths_document())
    assert parsed.paths[0] == ("artist",)
    assert parsed.paths[-1] == ("userId",)
    assert len(parsed.top_level_keys()) == 18
