"""A tiny data root in the layout of ``../shared/data``: DDTP, NTREX-128 and STSb-multi-MT, a few lines each."""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import pytest

EN = [  # (md5, package, short, long)
    ("m1", "zebra-tool", "Zebra printer driver", "Drives zebra label printers over USB."),
    ("m2", "coffee-timer", "Coffee brewing timer", "Times coffee brewing and rings a bell."),
    ("m3", "solar-calc", "Solar panel calculator", "Estimates solar panel output per month."),
    ("m4", "cat-feeder", "Automatic cat feeder", "Controls an automatic cat feeder at fixed hours."),
    ("m5", "same-short", "Shared tool", "An untranslated short description."),
    ("m6", "dup-long", "Duplicate long text", "Drives zebra label printers over USB."),
]
DE = [
    ("m1", "zebra-tool", "Zebra Druckertreiber", "Steuert Zebra Etikettendrucker über USB."),
    ("m2", "coffee-timer", "Kaffee Brühtimer", "Misst die Brühzeit von Kaffee und klingelt."),
    ("m3", "solar-calc", "Solarmodul Rechner", "Schätzt den Ertrag eines Solarmoduls pro Monat."),
    ("m4", "cat-feeder", "Automatischer Katzenfutterspender", "Steuert einen Katzenfutterspender."),
    ("m5", "same-short", "Shared tool", "Eine Beschreibung."),  # short left in English: filtered out
    ("m6", "dup-long", "Doppelter Text", "Anderer Text."),  # English long repeats m1's: filtered out
]


def _write(path: Path, rows) -> None:
    lines = [json.dumps({"md5": m, "package": p, "short": s, "long": lg}) for m, p, s, lg in rows]
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode("utf-8")))


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    (root / "debian-ddtp").mkdir(parents=True)
    _write(root / "debian-ddtp" / "descriptions.en.jsonl.gz", EN)
    _write(root / "debian-ddtp" / "descriptions.de.jsonl.gz", DE)
    _write(root / "debian-ddtp" / "descriptions.fi.jsonl.gz", DE[:1])  # too few translations
    (root / "ntrex-128" / "NTREX-128").mkdir(parents=True)
    (root / "ntrex-128" / "LANGUAGES.tsv").write_text("deu German\n", encoding="utf-8")
    for name, lines in (
        ("src.eng", ["Zebra 2024", "Coffee 1999"]),
        ("ref.deu", ["Zebra 2024", "Kaffee 1999"]),
    ):
        path = root / "ntrex-128" / "NTREX-128" / f"newstest2019-{name}.txt.gz"
        path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    (root / "stsb-multi-mt" / "data").mkdir(parents=True)
    buf = io.StringIO()
    csv.writer(buf).writerows([("a b", "a b", 5), ("a b", "a c", 2.5), ("a b", "c d", 0)])
    (root / "stsb-multi-mt" / "data" / "stsb-de-test.csv.gz").write_bytes(
        gzip.compress(buf.getvalue().encode())
    )
    return root
