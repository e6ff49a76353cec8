"""FAISS against NumPy brute force, save/load, HNSW recall, and reciprocal-rank fusion."""

from __future__ import annotations

import numpy as np
import pytest

from indexer.retrieval.dense import DenseIndex
from indexer.retrieval.fusion import rrf


def unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    vecs = unit(rng, 500, 48)
    ids = rng.choice(10_000, size=500, replace=False).astype(np.int64)
    return ids, vecs, unit(rng, 20, 48)


def brute(ids, vecs, queries, k, allowed=None):
    scores = queries @ vecs.T  # (n_queries, n)
    if allowed is not None:
        scores = np.where(np.isin(ids, allowed)[None, :], scores, -np.inf)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return ids[order], np.take_along_axis(scores, order, axis=1)


def test_flat_equals_numpy(data):
    ids, vecs, queries = data
    index = DenseIndex.empty(48)
    index.add(ids, vecs)
    got_ids, got_scores = index.search(queries, 10)
    want_ids, want_scores = brute(ids, vecs, queries, 10)
    np.testing.assert_array_equal(got_ids, want_ids)
    np.testing.assert_allclose(got_scores, want_scores, rtol=1e-5, atol=1e-5)


def test_filtered_search_equals_numpy(data):
    ids, vecs, queries = data
    index = DenseIndex.empty(48)
    index.add(ids, vecs)
    allowed = np.sort(ids[::7])
    got_ids, _ = index.search(queries, 5, allowed)
    want_ids, _ = brute(ids, vecs, queries, 5, allowed)
    np.testing.assert_array_equal(got_ids, want_ids)


def test_remove_and_save_load(data, tmp_path):
    ids, vecs, queries = data
    index = DenseIndex.empty(48)
    index.add(ids, vecs)
    assert index.remove(set(ids[:100].tolist())) == 100
    index.save(tmp_path / "d.faiss", None)
    loaded = DenseIndex.load(tmp_path / "d.faiss")
    assert len(loaded) == 400
    got_ids, _ = loaded.search(queries, 10)
    want_ids, _ = brute(ids[100:], vecs[100:], queries, 10)
    np.testing.assert_array_equal(got_ids, want_ids)


def test_hnsw_recall(data, tmp_path):
    ids, vecs, queries = data
    index = DenseIndex.empty(48)
    index.add(ids, vecs)
    index.build_ann(m=16)
    assert index.kind == "hnsw"
    index.save(tmp_path / "d.faiss", tmp_path / "h.faiss")
    loaded = DenseIndex.load(tmp_path / "d.faiss", tmp_path / "h.faiss")
    got_ids, _ = loaded.search(queries, 10)
    want_ids, _ = brute(ids, vecs, queries, 10)
    recall = np.mean([len(set(g) & set(w)) / 10 for g, w in zip(got_ids, want_ids)])
    assert recall >= 0.95
    allowed = np.sort(ids[::5])
    got_ids, _ = loaded.search(queries, 5, allowed)
    assert np.isin(got_ids[got_ids >= 0], allowed).all()


def test_empty_index_returns_no_hits():
    ids, scores = DenseIndex.empty(8).search(np.ones((2, 8), np.float32), 5)
    assert (ids == -1).all()


def test_rrf_hand_computed():
    fused = rrf([[1, 2, 3], [3, 1, 4]], k=60)
    expected = {1: 1 / 61 + 1 / 62, 2: 1 / 62, 3: 1 / 63 + 1 / 61, 4: 1 / 63}
    assert [i for i, _ in fused] == [1, 3, 2, 4]
    for i, score in fused:
        assert score == pytest.approx(expected[i])
    assert rrf([], k=60) == []
