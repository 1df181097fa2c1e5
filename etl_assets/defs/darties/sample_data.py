"""Generated Darties workbooks, shaped like the real ones: a `darties` sheet of store cities
and nine `<V|CA|MB>_<Fours|Hifi|Magneto>` sheets with `Villes` and objective/actual columns
(`O_<Mois>`/`R_<Mois>` for the twelve months of a yearly workbook, `O_mois`/`R_mois` for a
monthly one). For the demo, the tests and the benchmark."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd

from etl_assets.defs.darties.workbooks import FAMILIES, INDICATORS, STORE_COLUMNS

MONTH_COLUMNS = (
    "Janvier",
    "Fevrier",
    "Mars",
    "Avril",
    "Mai",
    "Juin",
    "Juillet",
    "Aout",
    "Septembre",
    "Octobre",
    "Novembre",
    "Decembre",
)
REGIONS = ("Nord_Ouest", "Nord_Est", "Sud_Ouest", "Sud_Est", "Paris")
BRANDS = ("Darty", "Boulanger", "Leroy_merlin")
SAMPLE = {  # file name -> (kind, year)
    "2020_HISTO.xlsx": "histo",
    "2021_BUDGET.xlsx": "budget",
    "Janvier_2021.xlsx": "monthly",
    "février_2021.xlsx": "monthly",
}


def city_names(count: int) -> list[str]:
    return [f"Ville_{i:04d}" for i in range(count)]


def stores_sheet(cities: list[str], seed: int = 1) -> pd.DataFrame:
    rng = random.Random(seed)
    rows = []
    for i, city in enumerate(cities):
        rows.append(
            {
                "Villes": city,
                "Enseignes": BRANDS[i % len(BRANDS)],
                "Publicité": round(rng.uniform(10, 150), 1),
                "REGION": REGIONS[i % len(REGIONS)],
                "Emplacemen": "Centre_Ville" if i % 2 else "Peripherie",
                "Nb_Caisses": rng.randrange(5, 30),
                "Population": rng.randrange(100_000, 3_000_000),
                "Taux_Ouvri": round(rng.uniform(5, 25), 1),
                "Taux_Cadre": round(rng.uniform(1, 10), 1),
                "Taux_Inact": round(rng.uniform(30, 50), 1),
                "Moins_25an": round(rng.uniform(25, 40), 1),
                "Les_25_35a": round(rng.uniform(10, 20), 1),
                "Plus_35ans": round(rng.uniform(40, 60), 1),
            }
        )
    frame = pd.DataFrame(rows)
    assert list(frame.columns) == list(STORE_COLUMNS)
    return frame


def measure_sheet(
    cities: list[str], indicator: str, months: list[str], actuals: bool, rng: random.Random
) -> pd.DataFrame:
    """`months`: the column suffixes (`Janvier`...; or `mois` for a monthly workbook)."""
    frame = pd.DataFrame({"Villes": cities})
    for month in months:
        for prefix in ("O", "R"):
            if prefix == "R" and not actuals:
                values = [None] * len(cities)
            elif indicator == "V":
                values = [rng.randrange(0, 120) for _ in cities]
            else:
                scale = 1000 if indicator == "CA" else 40
                values = [round(rng.uniform(0, scale), 1) for _ in cities]
            frame[f"{prefix}_{month}"] = values
    return frame


def workbook_sheets(kind: str, cities: list[str], seed: int = 1) -> dict[str, pd.DataFrame]:
    rng = random.Random(seed)
    months = ["mois"] if kind == "monthly" else list(MONTH_COLUMNS)
    sheets = {"darties": stores_sheet(cities, seed)}
    for indicator in INDICATORS:
        for family in FAMILIES:
            sheets[f"{indicator}_{family}"] = measure_sheet(
                cities, indicator, months, kind != "budget", rng
            )
    return sheets


def write_workbook(path: Path, sheets: dict[str, pd.DataFrame]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        for name, frame in sheets.items():
            frame.to_excel(writer, sheet_name=name, index=False)
    return path


def write_darties(root: Path, cities: int = 12) -> Path:
    """Sample workbooks under `<root>/darties/`: a yearly HISTO for 2020, the 2021 budget, and
    monthly workbooks for January and February 2021 (one spelled with an accent)."""
    folder = root / "darties"
    names = city_names(cities)
    for seed, (file_name, kind) in enumerate(SAMPLE.items(), start=1):
        write_workbook(folder / file_name, workbook_sheets(kind, names, seed))
    return folder
