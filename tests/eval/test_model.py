"""The evaluation end to end with the real default model (multilingual-e5-small, rebuilt offline) on the tiny set."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.run import evaluate

TINY = Path(__file__).resolve().parents[1] / "fixtures" / "beir_tiny"


@pytest.mark.model
def test_real_model_finds_every_relevant_document_first(
    default_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("E5SEARCH_HOME", str(default_model_path.parents[1]))
    result = evaluate(TINY, retrievers=["bm25", "dense", "hybrid"], index_cache_dir=tmp_path, n_resamples=200)
    # BM25 does not depend on the encoder: the same numbers as with the fake encoder (see test_run.py)
    assert result["results"]["bm25"]["ndcg@10"] == pytest.approx(0.825039, abs=1e-6)
    for name in ("dense", "hybrid"):
        row = result["results"][name]
        # the model ranks each query's best document first, across English, Russian, Chinese and Arabic,
        # including q2, which is all stopwords for BM25
        assert row["mrr@10"] == 1.0 and row["recall@100"] == 1.0, name
        assert row["ndcg@10"] >= 0.95, name
    assert result["config"]["encoder"]["fingerprint"] in result["config"]["index_dir"]
