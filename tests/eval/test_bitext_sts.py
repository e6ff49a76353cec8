"""Bitext mining and STS on tiny in-memory samples with the fake encoder (word overlap decides everything)."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import numpy as np
import pytest

from eval.bitext import bitext_mining, mining_accuracy, read_languages, sample_lines
from eval.sts import load_stsb, sample_pairs, sts_benchmark, sts_spearman, stsb_languages
from indexer.errors import E5SearchError
from tests.fakes import FakeEncoder

ENGLISH = ["Paris 2024 Olympics", "Tokyo 1964 games", "Berlin wall 1989"]
GERMAN = [
    "Olympische Spiele Paris 2024",
    "Spiele Tokyo 1964",
    "Berliner Mauer 1989",
]  # shares names and years
# the third "translation" shares a word with each of the first two English sentences and none with the third
FRENCH = ["Jeux de Paris 2024", "Jeux de Tokyo 1964", "Paris 1964"]


def _gz(path: Path, lines: list[str]) -> None:
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode("utf-8")))


@pytest.fixture
def ntrex(tmp_path: Path) -> Path:
    (tmp_path / "NTREX-128").mkdir()
    (tmp_path / "LANGUAGES.tsv").write_text(
        "deu German\nfra French\nzho-CN  Chinese (Simplified)\n", encoding="utf-8"
    )
    _gz(tmp_path / "NTREX-128" / "newstest2019-src.eng.txt.gz", ENGLISH)
    _gz(tmp_path / "NTREX-128" / "newstest2019-ref.deu.txt.gz", GERMAN)
    _gz(tmp_path / "NTREX-128" / "newstest2019-ref.fra.txt.gz", FRENCH)
    _gz(tmp_path / "NTREX-128" / "newstest2019-ref.zho-CN.txt.gz", ENGLISH[:2])
    return tmp_path


def test_mining_accuracy_by_hand():
    e = np.eye(3, dtype=np.float32)
    assert mining_accuracy(e, e) == 1.0
    assert mining_accuracy(e, e[[1, 0, 2]]) == pytest.approx(1 / 3)
    # a neighbour with the gold sentence's exact text counts as found
    assert mining_accuracy(e, e[[1, 0, 2]], ["same", "same", "x"]) == 1.0
    with pytest.raises(ValueError, match="equal shapes"):
        mining_accuracy(e, e[:2])


def test_bitext_mining_both_directions(ntrex: Path):
    assert read_languages(ntrex) == {"deu": "German", "fra": "French", "zho-CN": "Chinese (Simplified)"}
    got = bitext_mining(FakeEncoder(dim=4096), ntrex, ["deu", "fra"])
    assert got["deu"] == {"name": "German", "xx->en": 1.0, "en->xx": 1.0, "mean": 1.0, "n": 3}
    # fra: "Paris 1964" is nearest to an English sentence other than "Berlin wall 1989" (xx->en 2/3); going
    # en->xx, "Berlin wall 1989" shares no word with any French line and also misses (2/3)
    assert got["fra"]["xx->en"] == pytest.approx(2 / 3)
    assert got["fra"]["en->xx"] == pytest.approx(2 / 3)


def test_bitext_errors_name_the_problem(ntrex: Path):
    with pytest.raises(E5SearchError, match="no language 'xyz'"):
        bitext_mining(FakeEncoder(), ntrex, ["xyz"])
    with pytest.raises(E5SearchError, match="not aligned"):
        bitext_mining(FakeEncoder(), ntrex, ["zho-CN"])


PAIRS = [  # overlap 4/4, 3/4, 2/4, 0/4 words → cosine 1, 0.75, 0.5, 0: same order as the gold scores
    ("red fox runs fast", "red fox runs fast", 5.0),
    ("red fox runs fast", "red fox runs slowly", 4.0),
    ("red fox runs fast", "red fox sleeps quietly", 2.5),
    ("red fox runs fast", "blue whale swims deep", 0.0),
]


def test_sts_spearman_by_hand():
    enc = FakeEncoder(dim=4096)
    assert sts_spearman(enc, PAIRS) == pytest.approx(100.0)
    assert sts_spearman(enc, [(a, b, -s) for a, b, s in PAIRS]) == pytest.approx(-100.0)
    with pytest.raises(ValueError, match="at least 2 pairs"):
        sts_spearman(enc, PAIRS[:1])


def test_sts_benchmark_reads_stsb_files(tmp_path: Path):
    (tmp_path / "data").mkdir()
    for lang in ("de", "en"):
        buf = io.StringIO()
        csv.writer(buf).writerows(PAIRS)
        (tmp_path / "data" / f"stsb-{lang}-test.csv.gz").write_bytes(gzip.compress(buf.getvalue().encode()))
    assert stsb_languages(tmp_path) == ["de", "en"]
    assert load_stsb(tmp_path, "de")[1] == ("red fox runs fast", "red fox runs slowly", 4.0)
    got = sts_benchmark(FakeEncoder(dim=4096), tmp_path, max_pairs=3)
    assert got == {
        "de": {"spearman": pytest.approx(100.0), "n": 3},
        "en": {"spearman": pytest.approx(100.0), "n": 3},
    }
    with pytest.raises(E5SearchError, match="languages: de, en"):
        load_stsb(tmp_path, "fr")
    (tmp_path / "data" / "stsb-xx-test.csv").write_text("only one column\n", encoding="utf-8")
    with pytest.raises(E5SearchError, match=r"stsb-xx-test.csv:1: expected sentence1,sentence2,score"):
        load_stsb(tmp_path, "xx")


def test_reduced_sizes_are_seeded_random_samples_not_the_first_n():
    pairs = [(f"a{i}", f"b{i}", float(i % 5)) for i in range(1379)]
    sample = sample_pairs(pairs, 300, seed=0)
    assert len(sample) == 300 and sample == sample_pairs(pairs, 300, seed=0)
    assert sample != pairs[:300] and sample != sample_pairs(pairs, 300, seed=1)
    assert sample == sorted(sample, key=pairs.index)  # file order kept
    assert sample_pairs(pairs, None) == pairs and sample_pairs(pairs, 5000) == pairs
    lines = sample_lines(1997, 300, seed=0)
    assert lines == sample_lines(1997, 300, seed=0) and lines != list(range(300)) and len(set(lines)) == 300
    assert sample_lines(3, None) == [0, 1, 2]


def test_bitext_sample_keeps_translations_aligned(ntrex: Path):
    got = bitext_mining(FakeEncoder(dim=4096), ntrex, ["deu"], max_sentences=2, seed=3)
    assert got["deu"]["n"] == 2 and got["deu"]["mean"] == 1.0  # the same lines of both files
