"""The cross-lingual folder set (eval.crosslingual) on a tiny synthetic DDTP: seeded, one language per package,
disjoint dev/test splits, exact-name answers; and the suite's folder part (eval.folder) run on it with the fake
encoder."""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from pathlib import Path

import pytest

from eval.crosslingual import CrossLingualConfig, build, exact_matches, load_texts, pair_of, sample
from eval.datasets import load_beir
from eval.folder import folder_markdown, run_folder
from eval.run import EvalConfig
from eval.suite import suite_markdown
from indexer.errors import ConfigError
from tests.fakes import FakeEncoder

LANGS = ("en", "de", "ja")
PAIRS = (("en", "en"), ("de", "en"), ("ja", "de"))
N = 60
MD5S = [hashlib.md5(str(i).encode()).hexdigest() for i in range(N)]


def _write(root: Path, lang: str, records: list[dict]) -> None:
    with gzip.open(root / f"descriptions.{lang}.jsonl.gz", "wt", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


@pytest.fixture
def ddtp(tmp_path: Path) -> Path:
    root = tmp_path / "debian-ddtp"
    root.mkdir()
    en = [(f"tool number {i}", f"Tool{i}X does thing {i} for users.") for i in range(N)]
    de = [(f"Werkzeug Nummer {i}", f"Tool{i}X erledigt Sache {i} für Benutzer.") for i in range(N)]
    ja = [(f"ツール{i}番", f"Tool{i}X は{i}番の作業をします。") for i in range(N)]
    de[0] = en[0]  # untranslated: must be filtered out
    de[1], de[2] = ("Werkzeug", de[1][1]), ("Werkzeug", de[2][1])  # one short text, two md5s: both filtered
    for lang, rows in (("en", en), ("de", de), ("ja", ja)):
        _write(root, lang, [{"md5": m, "package": f"pkg{i}", "short": s, "long": lg} for i, (m, (s, lg)) in
                            enumerate(zip(MD5S, rows))])  # fmt: skip
    return root


def _config(**kw) -> CrossLingualConfig:
    return CrossLingualConfig(
        languages=LANGS, pairs=PAIRS, queries_per_pair=5, distractors_per_lang=3, exact_queries=4, **kw
    )


def test_filters_drop_untranslated_and_duplicates(ddtp: Path):
    texts = load_texts(ddtp, LANGS)
    assert not set(MD5S[:3]) & set(texts["de"])
    assert len(texts["de"]) == N - 3 and len(texts["en"]) == N and len(texts["ja"]) == N


def test_seeded_one_language_per_package_disjoint_splits(ddtp: Path):
    texts = load_texts(ddtp, LANGS)
    corpus, queries, qrels, meta = sample(texts, _config())
    assert sample(texts, _config()) == (corpus, queries, qrels, meta)  # the same seed, the same set
    assert sample(texts, _config(seed=1))[0] != corpus  # another seed, another draw (not the first N)
    assert len(corpus) == len(PAIRS) * 2 * 5 + len(LANGS) * 3  # answers of both splits + distractors
    dev_docs = {d for rels in qrels["dev"].values() for d in rels}
    test_docs = {d for rels in qrels["test"].values() for d in rels}
    assert len(dev_docs) == len(test_docs) == 15 and not dev_docs & test_docs
    assert not set(qrels["dev"]) & set(qrels["test"])
    for split in ("dev", "test"):
        for qid, rels in qrels[split].items():
            x, y, _ = qid.split(".")
            (doc,) = rels
            assert meta["doc_lang"][doc] == y and queries[qid] == texts[x][doc][0]
            assert corpus[doc]["text"] == texts[y][doc][1]
    assert sorted({pair_of(q) for q in qrels["test"]}) == ["de>en", "en>en", "ja>de"]


def test_exact_queries_name_one_document(ddtp: Path):
    corpus, queries, qrels, _ = sample(load_texts(ddtp, LANGS), _config())
    assert len(qrels["exact"]) == 4
    for qid, rels in qrels["exact"].items():
        (doc,) = rels
        holders = [d for d, c in corpus.items() if queries[qid].casefold() in c["text"].casefold().split()]
        assert holders == [doc]
    assert exact_matches({"a": {"title": "", "text": "plain words only"}}, 3, random.Random(0)) == []


def test_build_writes_a_beir_folder(ddtp: Path, tmp_path: Path):
    out = build(ddtp, tmp_path / "xling", _config())
    corpus, queries, qrels = load_beir(out, "test")
    assert len(queries) == 15 and len(corpus) == 39
    manifest = json.loads((out / "build.json").read_text())
    assert manifest["queries_per_split"] == {"dev": 15, "test": 15, "exact": 4}
    assert manifest["config"]["seed"] == 0 and set(manifest["source_sha256"]) == set(LANGS)


def test_too_few_packages_is_a_clear_error(ddtp: Path):
    with pytest.raises(ConfigError, match="lower queries_per_pair"):
        sample(load_texts(ddtp, LANGS), CrossLingualConfig(languages=LANGS, pairs=PAIRS, queries_per_pair=40))
    with pytest.raises(ConfigError, match="not in languages"):
        CrossLingualConfig(languages=("en",), pairs=(("en", "de"),))


def test_folder_part_scores_every_pair_and_the_gate(ddtp: Path, tmp_path: Path):
    """The fake encoder shares no word across languages, BM25 shares the ``ToolNX`` names: both are exact on
    same-language queries, dense finds nothing across languages."""
    folder = run_folder(FakeEncoder(dim=4096), ddtp, tmp_path / "work", _config(), EvalConfig(fusion="rrf"))
    assert list(folder["pairs"]) == ["de>en", "en>en", "ja>de"]
    en = folder["pairs"]["en>en"]
    assert en["n_queries"] == 5 and en["bm25"]["ndcg@10"] == 1.0 and en["dense"]["ndcg@10"] == 1.0
    assert en["gate"] == {"passed": True, "best": "bm25"}
    assert folder["fusion"] == "rrf" and folder["n_exact"] == 4
    assert folder["mean"]["bm25"] == pytest.approx(
        sum(r["bm25"]["ndcg@10"] for r in folder["pairs"].values()) / 3
    )
    assert folder["exact_in_top10"]["bm25"] == 1.0
    lines = folder_markdown(folder)
    assert lines[0].startswith("## Cross-lingual folder") and any(
        line.startswith("| en>en | 5 |") for line in lines
    )
    report = suite_markdown({"config": {"xling_queries": 1, "xling_docs": 1, "bitext_sentences": None,
                                        "sts_pairs": 300, "seed": 0}, "folder": folder})  # fmt: skip
    assert "Cross-lingual folder" in report and "seeded random samples" in report
