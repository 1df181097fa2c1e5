import json

from etl_assets.defs.sparkify.sample_data import LOG_KEYS, write_sparkify


def _snapshot(root):
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*.json"))}


def test_same_seed_same_files_other_seed_other_files(tmp_path) -> None:
    write_sparkify(tmp_path / "a", seed=3, days=2, events_per_day=30, songs=8)
    write_sparkify(tmp_path / "b", seed=3, days=2, events_per_day=30, songs=8)
    write_sparkify(tmp_path / "c", seed=4, days=2, events_per_day=30, songs=8)
    assert _snapshot(tmp_path / "a") == _snapshot(tmp_path / "b")
    assert _snapshot(tmp_path / "a") != _snapshot(tmp_path / "c")


def test_events_carry_the_real_files_quirks(tmp_path) -> None:
    summary = write_sparkify(tmp_path, seed=1, days=3, events_per_day=400, songs=20)
    logs = sorted(tmp_path.rglob("*-events.json"))
    assert len(logs) == 3 and summary.events == 1200
    assert not logs[0].read_text().endswith("\n")  # like the real files
    events = [json.loads(line) for p in logs for line in p.read_text().splitlines()]
    assert all(list(e) == LOG_KEYS for e in events)
    assert all(isinstance(e["userId"], str) for e in events)
    assert any(e["userId"] == "" for e in events)  # logged-out events
    assert all(e["artist"] is None for e in events if e["page"] != "NextSong")
    assert all(isinstance(e["registration"], float) for e in events if e["userId"])
    assert sum(e["page"] == "NextSong" for e in events) == summary.next_song_events
