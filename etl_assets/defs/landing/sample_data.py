"""A generated landing sample: a schema file, appends, a truncate, an upsert, a schema
evolution and a refused file, for the demo and the tests."""

from __future__ import annotations

import json
from pathlib import Path

USERS_V1 = {
    "table": "users",
    "columns": [
        {"name": "user_id", "type": "integer", "nullable": False},
        {"name": "name", "type": "varchar(20)", "nullable": False},
        {"name": "level", "type": "varchar(8)"},
    ],
    "primary_key": ["user_id"],
    "allowed_operations": ["append", "truncate", "upsert", "schema"],
}
# the evolution: a new nullable column, a wider name
USERS_V2 = {
    **USERS_V1,
    "columns": [
        {"name": "user_id", "type": "integer", "nullable": False},
        {"name": "name", "type": "varchar(40)", "nullable": False},
        {"name": "level", "type": "varchar(8)"},
        {"name": "city", "type": "varchar(30)"},
    ],
}
EVENTS = {
    "table": "events",
    "columns": [
        {"name": "event_id", "type": "bigint", "nullable": False},
        {"name": "user_id", "type": "integer"},
        {"name": "kind", "type": "varchar(16)"},
        {"name": "at", "type": "timestamp"},
    ],
    "allowed_operations": ["append", "schema"],
}

FILES = {
    "dev/schema/users/users_v1.json": json.dumps(USERS_V1, indent=2),
    "dev/schema/events/events.json": json.dumps(EVENTS, indent=2),
    "dev/append/users/01_first.csv": "user_id,name,level\n1,Ada,free\n2,Grace,paid\n3,Alan,free\n",
    "dev/append/users/02_more.csv": "level,user_id,name\npaid,4,Edsger\n",  # any column order
    "dev/upsert/users/03_levels.csv": "user_id,name,level\n1,Ada,paid\n5,Barbara,free\n",
    "dev/append/events/01_events.csv": (
        "event_id,user_id,kind,at\n10,1,login,2026-11-01 10:00:00\n11,2,play,2026-11-01 10:05:00\n"
        "12,,visit,2026-11-01 10:06:00\n"
    ),
    # refused: events only allow append and schema
    "dev/truncate/events/02_reset.csv": "event_id,user_id,kind,at\n1,1,login,2026-11-02 00:00:00\n",
}
EVOLUTION = {
    "dev/schema/users/users_v2.json": json.dumps(USERS_V2, indent=2),
    "dev/truncate/users/04_snapshot.csv": (
        "user_id,name,level,city\n1,Ada Lovelace,paid,London\n2,Grace Hopper,paid,New York\n"
    ),
}


def write_landing(root: Path) -> None:
    """`root/landing/...`: uploaded by the demo schema files first, then the data files."""
    for name, text in {**FILES, **EVOLUTION}.items():
        path = root / "landing" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
