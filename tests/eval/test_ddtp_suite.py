"""The DDTP cross-lingual builder on a tiny fake DDTP folder, and the whole multilingual suite with the fake encoder."""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import pytest

from eval.datasets import load_beir
from eval.ddtp import build_all, eligible_languages
from eval.suite import SuiteConfig, run_suite
from indexer.errors import ConfigError
from tests.fakes import FakeEncoder

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
    for name, lines in (("src.eng", ["Zebra 2024", "Coffee 1999"]), ("ref.deu", ["Zebra 2024", "Kaffee 1999"])):
        path = root / "ntrex-128" / "NTREX-128" / f"newstest2019-{name}.txt.gz"
        path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    (root / "stsb-multi-mt" / "data").mkdir(parents=True)
    buf = io.StringIO()
    csv.writer(buf).writerows([("a b", "a b", 5), ("a b", "a c", 2.5), ("a b", "c d", 0)])
    (root / "stsb-multi-mt" / "data" / "stsb-de-test.csv.gz").write_bytes(gzip.compress(buf.getvalue().encode()))
    return root


def test_builds_both_directions_with_filters_and_seed(data_root: Path, tmp_path: Path):
    src = data_root / "debian-ddtp"
    assert eligible_languages(src, min_translations=3) == ["de"]
    paths = build_all(src, tmp_path / "out", n_queries=2, n_docs=3, seed=7, min_translations=3)
    assert sorted(paths) == ["de-en", "en-de"]
    corpus, queries, qrels = load_beir(paths["de-en"], "test")
    assert len(corpus) == 3 and len(queries) == 2
    assert set(corpus) <= {"zebra-tool", "coffee-timer", "solar-calc", "cat-feeder"}  # m5, m6 filtered
    assert all(qrels[q] == {q: 1} for q in queries)
    assert all(corpus[d]["title"] == "" for d in corpus)
    en_corpus, en_queries, _ = load_beir(paths["en-de"], "test")
    assert set(en_corpus) == set(corpus) and set(en_queries) == set(queries)  # same packages, both ways
    assert queries["zebra-tool" if "zebra-tool" in queries else next(iter(queries))] in {r[2] for r in DE}
    assert en_corpus[next(iter(en_corpus))]["text"] in {r[3] for r in DE}
    again = build_all(src, tmp_path / "again", n_queries=2, n_docs=3, seed=7, min_translations=3)
    assert load_beir(again["de-en"], "test") == (corpus, queries, qrels)
    manifest = json.loads((tmp_path / "out" / "build.json").read_text())
    assert manifest["languages"] == ["de"] and manifest["seed"] == 7


def test_suite_writes_one_report(data_root: Path, tmp_path: Path):
    config = SuiteConfig(xling_queries=2, xling_docs=4, xling_min_translations=3, bitext_languages=("deu",))
    result = run_suite(tmp_path / "report", config, data_root=data_root, work_dir=tmp_path / "work",
                       encoder=FakeEncoder(dim=4096))
    assert set(result["xling"]) == {"de-en", "en-de"}  # fi has 1 translation, below the minimum
    assert set(result["xling"]["de-en"]) == {"n_queries", "n_docs", "bm25", "dense"}
    assert result["bitext"]["deu"]["mean"] == 1.0  # names and years carry both sentences
    assert result["sts"]["de"]["spearman"] == pytest.approx(100.0)
    text = (tmp_path / "report" / "multilingual.md").read_text(encoding="utf-8")
    for heading in ("Cross-lingual retrieval (DDTP)", "Bitext mining (NTREX-128)", "STS (STSb-multi-MT, test)"):
        assert heading in text
    assert json.loads((tmp_path / "report" / "multilingual.json").read_text())["config"]["xling_docs"] == 4


def test_suite_config_is_validated():
    with pytest.raises(ConfigError, match="choose from"):
        SuiteConfig(parts=("xling", "mteb"))
    with pytest.raises(ConfigError, match="queries <= docs"):
        SuiteConfig(xling_queries=10, xling_docs=5)
