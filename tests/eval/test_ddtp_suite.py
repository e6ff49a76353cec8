"""The DDTP cross-lingual builder on a tiny fake DDTP folder, and the whole multilingual suite with the fake encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.datasets import load_beir
from eval.ddtp import build_all, eligible_languages
from eval.suite import SuiteConfig, run_suite
from indexer.errors import ConfigError
from tests.eval.conftest import DE
from tests.fakes import FakeEncoder


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
    config = SuiteConfig(
        parts=(
            "xling",
            "bitext",
            "sts",
        ),  # the folder part needs more packages: tests/eval/test_crosslingual.py
        xling_queries=2,
        xling_docs=4,
        xling_min_translations=3,
        bitext_languages=("deu",),
    )
    result = run_suite(
        tmp_path / "report",
        config,
        data_root=data_root,
        work_dir=tmp_path / "work",
        encoder=FakeEncoder(dim=4096),
    )
    assert set(result["xling"]) == {"de-en", "en-de"}  # fi has 1 translation, below the minimum
    assert set(result["xling"]["de-en"]) == {"n_queries", "n_docs", "bm25", "dense"}
    assert result["bitext"]["deu"]["mean"] == 1.0  # names and years carry both sentences
    assert result["sts"]["de"]["spearman"] == pytest.approx(100.0)
    text = (tmp_path / "report" / "multilingual.md").read_text(encoding="utf-8")
    for heading in (
        "Cross-lingual retrieval (DDTP)",
        "Bitext mining (NTREX-128)",
        "STS (STSb-multi-MT, test)",
    ):
        assert heading in text
    assert json.loads((tmp_path / "report" / "multilingual.json").read_text())["config"]["xling_docs"] == 4


def test_suite_config_is_validated():
    with pytest.raises(ConfigError, match="choose from"):
        SuiteConfig(parts=("xling", "mteb"))
    with pytest.raises(ConfigError, match="queries <= docs"):
        SuiteConfig(xling_queries=10, xling_docs=5)
