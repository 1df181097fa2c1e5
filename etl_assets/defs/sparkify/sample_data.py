"""Sparkify-shaped sample data: song files and daily event logs with the real files' keys,
types and quirks (userId a string, "" when logged out; nulls on non-song pages; floats that
match song durations exactly for some plays). Deterministic for a seed; any size.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

WORDS = [
    "love",
    "night",
    "heart",
    "fire",
    "rain",
    "summer",
    "dream",
    "blue",
    "road",
    "home",
    "time",
    "light",
    "dark",
    "city",
    "gold",
    "wild",
    "river",
    "moon",
    "song",
    "dance",
    "girl",
    "boy",
    "world",
    "soul",
    "sky",
    "star",
    "street",
    "ghost",
    "sweet",
    "lonely",
    "electric",
]
FIRST_NAMES = [
    "Lily",
    "Kaylee",
    "Walter",
    "Jacob",
    "Ava",
    "Noah",
    "Mia",
    "Liam",
    "Emma",
    "Lucas",
    "Chloe",
    "Ryan",
    "Aleena",
]
LAST_NAMES = [
    "Koch",
    "Summers",
    "Frye",
    "Klein",
    "Smith",
    "Garcia",
    "Jones",
    "Brown",
    "Davis",
    "Lopez",
    "Kirby",
    "Moore",
]
CITIES = [
    "San Francisco-Oakland-Hayward, CA",
    "Phoenix-Mesa-Scottsdale, AZ",
    "Chicago-Naperville-Elgin, IL-IN-WI",
    "New York-Newark-Jersey City, NY-NJ-PA",
    "Atlanta-Sandy Springs-Roswell, GA",
    "Portland-South Portland, ME",
]
AGENTS = [
    '"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.36 (KHTML, like Gecko) '
    'Chrome/36.0.1985.143 Safari/537.36"',
    '"Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) '
    'Chrome/35.0.1916.153 Safari/537.36"',
    "Mozilla/5.0 (X11; Linux x86_64; rv:31.0) Gecko/20100101 Firefox/31.0",
]
OTHER_PAGES = ["Home", "Home", "Logout", "Settings", "About", "Help", "Upgrade", "Downgrade"]
LOG_KEYS = [
    "artist",
    "auth",
    "firstName",
    "gender",
    "itemInSession",
    "lastName",
    "length",
    "level",
    "location",
    "method",
    "page",
    "registration",
    "sessionId",
    "song",
    "status",
    "ts",
    "userAgent",
    "userId",
]


@dataclass(frozen=True)
class Song:
    song_id: str
    title: str
    artist_id: str
    artist_name: str
    duration: float


@dataclass
class SparkifySample:
    songs: int
    log_files: int
    events: int
    next_song_events: int


def _ident(rng: random.Random, prefix: str, n: int = 16) -> str:
    return prefix + "".join(rng.choices(string.ascii_uppercase + string.digits, k=n))


def _title(rng: random.Random) -> str:
    return " ".join(w.capitalize() for w in rng.sample(WORDS, rng.randint(1, 4)))


def make_songs(rng: random.Random, count: int) -> list[Song]:
    artists = [(_ident(rng, "AR"), f"The {_title(rng)}") for _ in range(max(1, count * 9 // 10))]
    songs = []
    for _ in range(count):
        artist_id, artist_name = rng.choice(artists)
        duration = round(rng.uniform(90, 600), 5)
        songs.append(Song(_ident(rng, "SO"), _title(rng), artist_id, artist_name, duration))
    return songs


def song_record(rng: random.Random, song: Song) -> dict:
    located = rng.random() < 0.4
    return {
        "num_songs": 1,
        "artist_id": song.artist_id,
        "artist_latitude": round(rng.uniform(-40, 60), 5) if located else None,
        "artist_longitude": round(rng.uniform(-120, 30), 5) if located else None,
        "artist_location": rng.choice(CITIES) if located else "",
        "artist_name": song.artist_name,
        "song_id": song.song_id,
        "title": song.title,
        "duration": song.duration,
        "year": rng.choice([0, rng.randint(1960, 2010)]),
    }


@dataclass
class _User:
    user_id: str
    first: str
    last: str
    gender: str
    level: str
    location: str
    agent: str
    registration: float


def make_users(rng: random.Random, count: int) -> list[_User]:
    return [
        _User(
            str(i + 2),
            rng.choice(FIRST_NAMES),
            rng.choice(LAST_NAMES),
            rng.choice("MF"),
            rng.choice(["free", "free", "free", "paid"]),
            rng.choice(CITIES),
            rng.choice(AGENTS),
            float(rng.randint(1_535_000_000, 1_541_000_000) * 1000 + 796),
        )
        for i in range(count)
    ]


def iter_day_events(
    rng: random.Random, day: date, count: int, users: list[_User], songs: list[Song]
) -> Iterator[dict]:
    """`count` events on `day`, in time order, as the app would log them."""
    start_ms = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
    offsets = sorted(rng.randrange(0, 86_400_000) for _ in range(count))
    session, item = rng.randint(1, 1000), 0
    user = rng.choice(users)
    for offset in offsets:
        if rng.random() < 0.1:
            session, item, user = session + 1, 0, rng.choice(users)
            if rng.random() < 0.05:
                user.level = "paid" if user.level == "free" else "free"
        item += 1
        yield _event(rng, start_ms + offset, session, item, user, songs)


def _event(
    rng: random.Random, ts: int, session: int, item: int, user: _User, songs: list[Song]
) -> dict:
    if rng.random() < 0.03:
        return _logged_out_event(rng, ts, session, item)
    event = dict.fromkeys(LOG_KEYS)
    event.update(
        auth="Logged In",
        firstName=user.first,
        gender=user.gender,
        itemInSession=item,
        lastName=user.last,
        level=user.level,
        location=user.location,
        method="GET",
        page=rng.choice(OTHER_PAGES),
        registration=user.registration,
        sessionId=session,
        status=200,
        ts=ts,
        userAgent=user.agent,
        userId=user.user_id,
    )
    if rng.random() < 0.82:
        song = rng.choice(songs) if songs and rng.random() < 0.1 else None
        event.update(
            method="PUT",
            page="NextSong",
            artist=song.artist_name if song else f"{_title(rng)} Band",
            song=song.title if song else _title(rng),
            length=song.duration if song else round(rng.uniform(90, 600), 5),
        )
    return event


def _logged_out_event(rng: random.Random, ts: int, session: int, item: int) -> dict:
    event = dict.fromkeys(LOG_KEYS)
    event.update(
        auth="Logged Out",
        itemInSession=item,
        level=rng.choice(["free", "paid"]),
        method="GET",
        page=rng.choice(["Home", "Login", "Help"]),
        sessionId=session,
        status=200,
        ts=ts,
        userId="",
    )
    return event


def jsonpaths_document() -> str:
    return json.dumps({"jsonpaths": [f"$['{key}']" for key in LOG_KEYS]}, indent=1)


def write_sparkify(
    root: Path,
    *,
    seed: int = 42,
    songs: int = 120,
    users: int = 60,
    days: int = 30,
    events_per_day: int = 250,
    first_day: date = date(2018, 11, 1),
) -> SparkifySample:
    """Write `root/sparkify/{song_data,log_data,log_json_path.json}` like the real bucket."""
    rng = random.Random(seed)
    base = root / "sparkify"
    catalog = make_songs(rng, songs)
    for song in catalog:
        track = _ident(rng, "TR")
        path = base / "song_data" / track[2] / track[3] / track[4] / f"{track}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(song_record(rng, song)))
    people = make_users(rng, users)
    events = plays = 0
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        path = base / "log_data" / f"{day:%Y}" / f"{day:%m}" / f"{day:%Y-%m-%d}-events.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [
            json.dumps(e, separators=(",", ":"))
            for e in iter_day_events(rng, day, events_per_day, people, catalog)
        ]
        plays += sum('"page":"NextSong"' in line for line in lines)
        events += len(lines)
        path.write_text("\n".join(lines))  # the real files have no final newline
    (base / "log_json_path.json").write_text(jsonpaths_document())
    return SparkifySample(len(catalog), days, events, plays)
