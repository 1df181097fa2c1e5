"""Flights-shaped sample data: the vendor's CSV layout (31 columns, `hhmm` times kept as text,
empty fields for what did not happen), an airlines JSON array and an airports CSV.
Deterministic for a seed; any size.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

AIRLINES = {
    "UA": "United Air Lines Inc.",
    "AA": "American Airlines Inc.",
    "US": "US Airways Inc.",
    "DL": "Delta Air Lines Inc.",
    "WN": "Southwest Airlines Co.",
    "AS": "Alaska Airlines Inc.",
}
AIRPORTS = [
    (
        "ATL",
        "Hartsfield-Jackson Atlanta International Airport",
        "Atlanta",
        "GA",
        33.64044,
        -84.42694,
    ),
    ("LAX", "Los Angeles International Airport", "Los Angeles", "CA", 33.94254, -118.40807),
    ("ORD", "Chicago O'Hare International Airport", "Chicago", "IL", 41.9796, -87.90446),
    ("SFO", "San Francisco International Airport", "San Francisco", "CA", 37.619, -122.37484),
    ("SEA", "Seattle-Tacoma International Airport", "Seattle", "WA", 47.44898, -122.30931),
    ("ECP", "Northwest Florida Beaches International Airport", "Panama City", "FL", None, None),
]
FLIGHT_COLUMNS = (
    "YEAR,MONTH,DAY,DAY_OF_WEEK,AIRLINE,FLIGHT_NUMBER,TAIL_NUMBER,ORIGIN_AIRPORT,"
    "DESTINATION_AIRPORT,SCHEDULED_DEPARTURE,DEPARTURE_TIME,DEPARTURE_DELAY,TAXI_OUT,"
    "WHEELS_OFF,SCHEDULED_TIME,ELAPSED_TIME,AIR_TIME,DISTANCE,WHEELS_ON,TAXI_IN,"
    "SCHEDULED_ARRIVAL,ARRIVAL_TIME,ARRIVAL_DELAY,DIVERTED,CANCELLED,CANCELLATION_REASON,"
    "AIR_SYSTEM_DELAY,SECURITY_DELAY,AIRLINE_DELAY,LATE_AIRCRAFT_DELAY,WEATHER_DELAY"
)


def _hhmm(minutes: int) -> str:
    minutes %= 24 * 60
    return f"{minutes // 60:02d}{minutes % 60:02d}"


def flight_row(rng: random.Random, number: int, day: date) -> list:
    """One vendor-format flight: 'hhmm' strings with leading zeros, empty fields when unknown."""
    origin, destination = rng.sample([a[0] for a in AIRPORTS], 2)
    scheduled_dep = rng.randrange(0, 24 * 60)
    scheduled_time = rng.randint(60, 360)
    cancelled = rng.random() < 0.02
    row = [
        day.year,
        day.month,
        day.day,
        day.isoweekday(),
        rng.choice(list(AIRLINES)),
        number,
        f"N{rng.randint(100, 999)}{rng.choice('ABCDEFUA')}A",
        origin,
        destination,
        _hhmm(scheduled_dep),
    ]
    if cancelled:  # only the schedule is known
        scheduled_arr = _hhmm(scheduled_dep + scheduled_time)
        return row + [
            "",
            "",
            "",
            "",
            scheduled_time,
            "",
            "",
            scheduled_time * 7,
            "",
            "",
            scheduled_arr,
            "",
            "",
            0,
            1,
            rng.choice("ABCD"),
            "",
            "",
            "",
            "",
            "",
        ]
    dep_delay = int(rng.gauss(5, 20))
    air_time = scheduled_time - rng.randint(15, 40)
    arr_delay = dep_delay + rng.randint(-15, 15)
    causes = [""] * 5
    if arr_delay >= 15:
        causes = [0] * 5
        causes[rng.randrange(5)] = arr_delay
    taxi_out, taxi_in = rng.randint(5, 30), rng.randint(2, 15)
    departure = scheduled_dep + dep_delay
    return row + [
        _hhmm(departure),
        dep_delay,
        taxi_out,
        _hhmm(departure + taxi_out),
        scheduled_time,
        air_time + taxi_out + taxi_in,
        air_time,
        air_time * 8,
        _hhmm(departure + taxi_out + air_time),
        taxi_in,
        _hhmm(scheduled_dep + scheduled_time),
        _hhmm(scheduled_dep + scheduled_time + arr_delay),
        arr_delay,
        0,
        0,
        "",
        *causes,
    ]


def iter_flight_lines(seed: int, rows: int, first_day: date = date(2015, 1, 1)) -> Iterator[str]:
    rng = random.Random(seed)
    yield FLIGHT_COLUMNS
    per_day = max(1, rows // 365 + 1)
    for number in range(rows):
        day = first_day + timedelta(days=number // per_day)
        yield ",".join(str(v) for v in flight_row(rng, number + 1, day))


def write_flights(root: Path, *, seed: int = 42, rows: int = 300) -> int:
    """Write `root/flights/{airlines.json, airports.csv, flights sample.csv}`."""
    base = root / "flights"
    base.mkdir(parents=True, exist_ok=True)
    airlines = [{"IATA_CODE": code, "AIRLINE": name} for code, name in AIRLINES.items()]
    (base / "airlines.json").write_text(json.dumps(airlines, indent=2))
    lines = ["IATA_CODE,AIRPORT,CITY,STATE,COUNTRY,LATITUDE,LONGITUDE"] + [
        f"{code},{name},{city},{state},USA,{'' if lat is None else lat},"
        f"{'' if lon is None else lon}"
        for code, name, city, state, lat, lon in AIRPORTS
    ]
    (base / "airports.csv").write_text("\n".join(lines) + "\n")
    (base / "flights sample.csv").write_text("\n".join(iter_flight_lines(seed, rows)))
    return rows
