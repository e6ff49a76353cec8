"""Crash safety, refusals and clear errors: the previous index survives anything a run can throw."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.build.job import build_index
from indexer.config import ChunkConfig, IndexConfig, ModelConfig
from indexer.errors import ConfigError, IndexStateError, QueryError
from indexer.search.index import Filters, Index
from tests.fakes import FakeEncoder
from tests.indexer.test_build import write_docs


@pytest.fixture
def setup(tmp_path: Path):
    corpus = write_docs(tmp_path / "docs")
    enc = FakeEncoder()
    build_index(corpus, tmp_path / "idx", encoder=enc)
    return corpus, tmp_path / "idx", enc


def snapshot(index_dir: Path, enc: FakeEncoder) -> dict:
    index = Index.open(index_dir, encoder=enc)
    return {
        q: [(h.doc_path, round(h.score, 6)) for h in index.search(q, mode="hybrid", k=5).hits]
        for q in ("camembert", "oxygen water", "Brot Mehl", "乌龙茶")
    }


def test_crash_while_writing_leaves_previous_index(setup, monkeypatch):
    corpus, idx, enc = setup
    before = snapshot(idx, enc)
    gen = Index.open(idx, encoder=enc).manifest["generation"]
    (corpus / "fromage.html").unlink()
    (corpus / "new.txt").write_text("Glaciers carve valleys.", encoding="utf-8")

    import indexer.retrieval.bm25 as bm25

    def boom(self, folder):  # dies after the new FAISS file was written, before the commit
        raise KeyboardInterrupt

    monkeypatch.setattr(bm25.BM25Index, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        build_index(corpus, idx, encoder=enc)
    assert Index.open(idx, encoder=enc).manifest["generation"] == gen
    assert snapshot(idx, enc) == before  # still whole and searchable
    monkeypatch.undo()
    s = build_index(corpus, idx, encoder=enc)  # the next run picks up
    assert (s.added, s.removed) == (1, 1)
    names = sorted(p.name for p in idx.iterdir() if p.name.startswith(("dense-", "bm25-", "hnsw-")))
    # the crashed run's leftovers were replaced; the previous generation stays until the next run, for readers
    # that took their snapshot before this commit
    assert names == [
        f"bm25-{gen:06d}",
        f"bm25-{gen + 1:06d}",
        f"dense-{gen:06d}.faiss",
        f"dense-{gen + 1:06d}.faiss",
    ]
    assert Index.open(idx, encoder=enc).search("glaciers", mode="bm25").hits[0].doc_path == "new.txt"


class FailingEncoder(FakeEncoder):
    def __init__(self, fail_after: int):
        super().__init__()
        self.fail_after = fail_after

    def encode_passages(self, texts, show_progress=False):
        if sum(self.calls) >= self.fail_after:
            raise KeyboardInterrupt
        return super().encode_passages(texts, show_progress)


def test_interrupted_encoding_resumes_from_cache(tmp_path: Path):
    docs = {f"doc{i}.txt": f"Document number {i} talks about topic{i}." for i in range(40)}
    corpus = write_docs(tmp_path / "docs", docs)
    config = IndexConfig(model=ModelConfig(batch_size=1))
    with pytest.raises(KeyboardInterrupt):
        build_index(corpus, tmp_path / "idx", config, encoder=FailingEncoder(fail_after=16))
    with pytest.raises(IndexStateError, match="never completed|no index"):
        Index.open(tmp_path / "idx")
    enc = FakeEncoder()
    s = build_index(corpus, tmp_path / "idx", config, encoder=enc)
    assert s.added == 40 and s.chunks == 40
    # batch size 1 on CPU -> groups of 16 chunks (16, 16, 8): the 16 encoded before the interrupt come from the cache
    assert sum(enc.calls) == s.chunks_encoded == 40 - 16


def test_a_new_build_of_the_backend_does_not_resume_from_old_vectors(tmp_path: Path):
    """Same fingerprint, another artefact format (an int8 recipe changed): the cached vectors are not reused."""
    docs = {f"doc{i}.txt": f"Document number {i} talks about topic{i}." for i in range(40)}
    corpus = write_docs(tmp_path / "docs", docs)
    config = IndexConfig(model=ModelConfig(batch_size=1))
    old = FailingEncoder(fail_after=16)  # one group of 16 cached, then interrupted
    old.cache_key = f"{old.fingerprint}@format1"
    with pytest.raises(KeyboardInterrupt):
        build_index(corpus, tmp_path / "idx", config, encoder=old)
    new = FakeEncoder()
    new.cache_key = f"{new.fingerprint}@format2"
    assert build_index(corpus, tmp_path / "idx", config, encoder=new).chunks_encoded == 40 == sum(new.calls)


def test_model_mismatch_is_refused(setup):
    corpus, idx, _ = setup
    other = FakeEncoder(dim=32)
    with pytest.raises(IndexStateError, match="fake-32"):
        Index.open(idx, encoder=other)
    with pytest.raises(IndexStateError, match="same --model"):
        build_index(corpus, idx, encoder=other)


def test_chunking_change_is_refused(setup):
    corpus, idx, enc = setup
    with pytest.raises(ConfigError, match="chunk"):
        build_index(corpus, idx, IndexConfig(chunking=ChunkConfig(chunk_size=64)), encoder=enc)


def test_source_outside_the_index_root_is_refused(setup, tmp_path: Path):
    _, idx, enc = setup
    other = write_docs(tmp_path / "other", {"a.txt": "alpha"})
    with pytest.raises(ConfigError, match="outside"):
        build_index(other, idx, encoder=enc)


def test_indexing_a_subfolder_touches_only_it(setup):
    corpus, idx, enc = setup
    (corpus / "tea" / "more.txt").write_text("红茶也很好喝。", encoding="utf-8")
    s = build_index(corpus / "tea", idx, encoder=enc)
    assert (s.added, s.removed, s.unchanged) == (1, 0, 1)
    assert Index.open(idx, encoder=enc).stats()["documents"] == 5


@pytest.mark.parametrize("query, match", [("", "empty"), ("   \n", "empty"), ("x" * 5000, "characters")])
def test_bad_queries(setup, query, match):
    _, idx, enc = setup
    with pytest.raises(QueryError, match=match):
        Index.open(idx, encoder=enc).search(query, mode="bm25")


def test_query_longer_than_the_model_limit(setup):
    _, idx, enc = setup
    with pytest.raises(QueryError, match="tokens"):
        Index.open(idx, encoder=enc).search("word " * 200, mode="dense")


def test_unknown_language_and_filters(setup):
    _, idx, enc = setup
    index = Index.open(idx, encoder=enc)
    with pytest.raises(QueryError, match="unknown language"):
        index.search("camembert", mode="dense", lang="xx")
    for mode in ("dense", "bm25", "hybrid"):
        assert {h.lang for h in index.search("fromage Brot tea", mode=mode, lang="de").hits} == {"de"}
        hits = index.search("fromage Brot tea", mode=mode, filters=Filters(file_type="html")).hits
        assert [h.doc_path for h in hits] == ["fromage.html"]
        hits = index.search("fromage Brot tea 绿茶", mode=mode, filters=Filters(path_prefix="tea/")).hits
        assert {h.doc_path for h in hits} == {"tea/cha.txt"}


def test_rerank_without_a_reranker_fails_clearly(setup):
    _, idx, enc = setup
    with pytest.raises(QueryError, match="no reranker"):
        Index.open(idx, encoder=enc).search("camembert", rerank=True)


def test_missing_and_foreign_index(tmp_path: Path):
    with pytest.raises(IndexStateError, match="no index"):
        Index.open(tmp_path / "nothing")
    (tmp_path / "foreign").mkdir()
    import sqlite3

    sqlite3.connect(tmp_path / "foreign" / "index.sqlite").execute("CREATE TABLE x (a)").connection.commit()
    with pytest.raises(IndexStateError, match="not an e5search index"):
        Index.open(tmp_path / "foreign")
