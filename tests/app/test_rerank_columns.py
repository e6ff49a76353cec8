"""The app's rerank: ONE cross-encoder pass over the union of the three columns' candidates, on by default when a
reranker is present, movements shown, and off with a one-line reason when the reranker is missing or broken.

A real small index (the fixture corpus, FakeEncoder vectors) and a real tiny CrossEncoder (random, seeded) run
the whole path; the pairs scored are counted on the reranker itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import indexer.models.default_reranker as dr
from app import service
from indexer.config import SearchConfig
from indexer.retrieval.rerank import RERANK_K, Reranker
from indexer.search.columns import search_columns
from indexer.search.index import Index
from tests.app.test_app import column_cards, fake_model, search, start, texts  # noqa: F401 (autouse)
from tests.fakes import FakeEncoder

QUERY = "coffee beans roasted water"
MODES = ("bm25", "dense", "hybrid")


@pytest.fixture()
def reranker(tiny_reranker: Path) -> Reranker:
    return Reranker(str(tiny_reranker), backend="torch")  # fp32: a pair's score does not depend on its batch


def _heads(idx: Index, query: str) -> dict[str, list[int]]:
    with idx.reading() as reading:
        return {m: [c for c, _ in idx.rank(reading, [query], m, 10)[0][:RERANK_K]] for m in MODES}


def test_one_pass_scores_the_union_of_the_three_columns(fake_index: Path, reranker: Reranker):
    idx = Index.open(
        fake_index, encoder=FakeEncoder(), reranker=reranker, config=SearchConfig(rerank_top=RERANK_K)
    )
    heads = _heads(idx, QUERY)
    union = set().union(*map(set, heads.values()))
    total = sum(len(h) for h in heads.values())
    assert len(union) < total  # the columns share candidates: one pass must score fewer pairs than three

    found = search_columns(idx, QUERY, MODES, k=5, rerank=True)
    assert reranker.pairs_scored == len(union)  # each shared candidate once
    assert (found.reranked, found.candidates) == (len(union), total)
    for mode in MODES:  # each column as if reranked on its own
        alone = idx.search(QUERY, mode=mode, k=5, rerank=True)
        assert [h.chunk_id for h in found.results[mode].hits] == [h.chunk_id for h in alone.hits]
        assert [h.prev_rank for h in found.results[mode].hits] == [h.prev_rank for h in alone.hits]
        assert found.results[mode].timings_ms["rerank"] == found.rerank_ms
    assert reranker.pairs_scored == len(union) + total  # the three separate searches: the sum


def test_a_column_that_cannot_run_leaves_the_others(fake_index: Path, reranker: Reranker):
    idx = Index.open(fake_index, encoder=FakeEncoder(), reranker=reranker)
    too_long = "kaffee " * 2000  # over the query character limit: every column says so
    found = search_columns(idx, too_long, MODES, rerank=True)
    assert set(found.errors) == set(MODES) and "characters" in found.errors["bm25"]
    assert reranker.pairs_scored == 0
    plain = search_columns(Index.open(fake_index, encoder=FakeEncoder()), QUERY, MODES, rerank=True)
    assert "no reranker configured" in plain.errors["dense"]


def test_the_app_reranks_once_by_default_and_shows_the_pass(monkeypatch, fake_index, tiny_reranker):
    monkeypatch.setenv("E5SEARCH_RERANKER", str(tiny_reranker))
    at = start(monkeypatch, fake_index)
    assert at.toggle(key="rerank").value and not at.toggle(key="rerank").disabled  # on by default
    app_reranker = service.load_reranker(str(tiny_reranker))  # the very object the app's index holds
    before = app_reranker.pairs_scored
    at = search(at, QUERY)
    idx = Index.open(fake_index, encoder=FakeEncoder())
    heads = _heads(idx, QUERY)
    union = set().union(*map(set, heads.values()))
    assert app_reranker.pairs_scored - before == len(union)
    [note] = [t for t in texts(at.caption) if t.startswith("Reranked in one pass")]
    assert f"{len(union)} distinct candidates" in note and f"hold {sum(map(len, heads.values()))}" in note
    shown = column_cards(at)
    assert all(shown.values()) and any("e5-move-" in card for cards in shown.values() for card in cards)
    assert all("rerank" in t for t in texts(at.caption) if "total" in t)  # each column's timing line

    at.toggle(key="rerank").set_value(False).run()  # switched off: the URL keeps the change
    assert at.query_params["rerank"] == "0"
    assert not any("e5-move-" in card for cards in column_cards(at).values() for card in cards)


def test_a_broken_default_reranker_leaves_reranking_off_with_the_reason(monkeypatch, tmp_path, fake_index):
    asset = tmp_path / "asset"
    asset.mkdir()
    (asset / dr.DELTA_FILE).write_bytes(b"\0" * 16)
    (asset / dr.META_FILE).write_text("{", encoding="utf-8")
    monkeypatch.setattr(dr, "ASSET_DIR", asset)
    monkeypatch.delenv("E5SEARCH_RERANKER")
    at = search(start(monkeypatch, fake_index), QUERY)
    toggle = at.toggle(key="rerank")
    assert toggle.disabled and not toggle.value
    [reason] = [t for t in texts(at.caption) if t.startswith("Reranking is off")]
    assert "could not be rebuilt" in reason and "\n" not in reason
    assert all(column_cards(at).values())  # search itself goes on
