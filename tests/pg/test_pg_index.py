"""A PostgreSQL index against the folder index it must match: same chunks, same rankings, exact counts.

The same folder is indexed to SQLite (FAISS flat, the reference) and to PostgreSQL with the deterministic fake
encoder; exact search must give the same top-10 (ids and scores), HNSW search recall@10 >= 0.95 against it.
Real server (tests/pg/conftest.py), real SQL; marked ``pg``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from indexer.build.job import build_index
from indexer.config import IndexConfig
from indexer.search.index import Filters, Index
from tests.fakes import FakeEncoder

pytestmark = pytest.mark.pg
ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample"
QUERIES = [
    json.loads(line)["text"] for line in (ROOT / "data" / "sample_queries.jsonl").open(encoding="utf-8")
]


def ranked(idx: Index, query: str, mode: str, k: int = 10, **kw) -> list[tuple[int, float]]:
    """(chunk id, score) best first, ties in chunk id order (both stores break ties by id, but a tie at
    the k-th place may be cut differently, so callers compare full lists of a larger k where it matters)."""
    hits = idx.search(query, mode=mode, k=k, **kw).hits
    return sorted(((h.chunk_id, round(h.score, 4)) for h in hits), key=lambda x: (-x[1], x[0]))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return Path(shutil.copytree(SAMPLE, tmp_path / "sample"))


def test_same_top10_as_sqlite_with_exact_search(folder, tmp_path, pg_url):
    built_folder = build_index(folder, tmp_path / "idx", encoder=FakeEncoder())
    built_pg = build_index(folder, pg_url, encoder=FakeEncoder())
    assert built_pg.to_json() | {"seconds": 0} == built_folder.to_json() | {"seconds": 0}
    sqlite, pg = (
        Index.open(tmp_path / "idx", encoder=FakeEncoder()),
        Index.open(pg_url, encoder=FakeEncoder()),
    )
    try:
        assert pg.dense.kind == "flat" and pg.generation == 1
        compared = 0
        for query in QUERIES:
            for mode in ("dense", "bm25", "hybrid"):
                want = ranked(sqlite, query, mode)
                assert ranked(pg, query, mode) == want, (query, mode)
                compared += len(want)
            filters = Filters(lang="de")
            assert ranked(pg, query, "dense", filters=filters) == ranked(
                sqlite, query, "dense", filters=filters
            )
        assert compared > 250
        s, p = sqlite.stats(), pg.stats()
        for key in ("files", "documents", "chunks", "vectors", "chunk_languages", "file_types", "skipped"):
            assert p[key] == s[key], key
        assert p["vectors"] == p["chunks"] == 120 and p["faiss_device"] == "postgresql"
        assert p["sizes_on_disk"]["embeddings"] > 0
        assert pg.chunk(5, neighbours=1) == sqlite.chunk(5, neighbours=1)
    finally:
        sqlite.close()
        pg.close()


def test_hnsw_recall_at_10_against_exact(folder, tmp_path, pg_url):
    build_index(folder, tmp_path / "idx", encoder=FakeEncoder())
    build_index(folder, pg_url, IndexConfig(dense_kind="hnsw"), encoder=FakeEncoder())
    exact, pg = Index.open(tmp_path / "idx", encoder=FakeEncoder()), Index.open(pg_url, encoder=FakeEncoder())
    try:
        assert pg.dense.kind == "hnsw"
        recalls: list[float] = []
        filtered: list[float] = []
        for query in QUERIES:
            want = {cid for cid, _ in ranked(exact, query, "dense")}
            got = {cid for cid, _ in ranked(pg, query, "dense")}
            recalls.append(len(want & got) / len(want))
            # a filter that most of the graph fails: the iterative scan keeps going until k rows pass it
            hits = pg.search(query, mode="dense", k=10, filters=Filters(lang="zh")).hits
            want_zh = {cid for cid, _ in ranked(exact, query, "dense", filters=Filters(lang="zh"))}
            assert len(hits) == len(want_zh) == 10 and {h.lang for h in hits} == {"zh"}
            filtered.append(len(want_zh & {h.chunk_id for h in hits}) / 10)
        assert sum(recalls) / len(recalls) >= 0.95, recalls
        assert sum(filtered) / len(filtered) >= 0.95, filtered
    finally:
        exact.close()
        pg.close()


def test_auto_searches_exactly_up_to_the_exact_scan_limit_then_the_graph(folder, pg_url, monkeypatch):
    from indexer.storage import pg_vectors

    build_index(folder, pg_url, encoder=FakeEncoder())  # 120 chunks
    first = Index.open(pg_url, encoder=FakeEncoder())
    assert first.dense.kind == "flat"
    first.close()
    monkeypatch.setattr(pg_vectors, "EXACT_SCAN_LIMIT", 100)
    (folder / "more.txt").write_text("One more file, so that the run commits.\n", encoding="utf-8")
    build_index(folder, pg_url, encoder=FakeEncoder())
    idx = Index.open(pg_url, encoder=FakeEncoder())
    assert idx.dense.kind == "hnsw" and idx.search("Kaffee", mode="dense", k=3).hits
    idx.close()


def test_repair_rewrites_every_vector_from_the_embedding_cache(folder, pg_url):
    from sqlalchemy import create_engine, text

    from indexer.storage.pg import engine_url

    build_index(folder, pg_url, encoder=FakeEncoder())
    engine = create_engine(engine_url(pg_url))
    with engine.begin() as conn:  # vectors lost (an operator's mistake): search would silently miss chunks
        conn.execute(text("DELETE FROM embeddings WHERE chunk_id % 2 = 0"))
    encoder = FakeEncoder()
    summary = build_index(folder, pg_url, encoder=encoder, repair=True)
    assert summary.chunks == 120 and summary.chunks_encoded == 0  # all from the local embedding cache
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM embeddings")) == 120
    engine.dispose()
    idx = Index.open(pg_url, encoder=FakeEncoder())
    assert idx.generation == 2 and idx.stats()["vectors"] == 120
    idx.close()


def test_incremental_runs_give_exact_counts(folder, tmp_path, pg_url):
    """Add, change and delete files: every count matches a clean SQLite build of the same folder."""

    def counts(location) -> dict:
        idx = Index.open(location, encoder=FakeEncoder())
        try:
            stats = idx.stats()
            return {k: stats[k] for k in ("files", "documents", "chunks", "vectors")} | {
                "bm25": len(idx.bm25)
            }
        finally:
            idx.close()

    summary = build_index(folder, pg_url, encoder=FakeEncoder())
    assert summary.added == 33
    (folder / "new_note.md").write_text("# Neu\n\nEin neuer Text über Bienen und Honig.\n", encoding="utf-8")
    (folder / "en_coffee_roasting.md").write_text(
        "# Coffee\n\nShort now: beans and heat.\n", encoding="utf-8"
    )
    (folder / "de_fahrrad.html").unlink()
    summary = build_index(folder, pg_url, encoder=FakeEncoder())
    assert (summary.added, summary.updated, summary.removed, summary.unchanged) == (1, 1, 1, 31)
    reference = build_index(folder, tmp_path / "ref", encoder=FakeEncoder())
    assert summary.chunks == reference.chunks
    assert counts(pg_url) == counts(tmp_path / "ref")
    nothing = build_index(folder, pg_url, encoder=FakeEncoder())
    assert (nothing.added, nothing.updated, nothing.removed, nothing.chunks_encoded) == (0, 0, 0, 0)
    idx = Index.open(pg_url, encoder=FakeEncoder())
    try:
        assert idx.generation == 2  # a run that changed nothing commits no generation
        assert idx.search("Bienen Honig", mode="bm25", k=1).hits[0].doc_path == "new_note.md"
    finally:
        idx.close()


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", "import sys; from e5search.cli import main; sys.exit(main())", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.parametrize(
    "url, says",
    [
        (
            "postgresql://postgres@127.0.0.1:1/e5",
            "cannot use PostgreSQL at postgresql://postgres@127.0.0.1:1/e5",
        ),
        ("postgresql://user:secret@127.0.0.1:1/e5", "postgresql://user:***@127.0.0.1:1/e5"),
        ("postgresql://127.0.0.1", "names no database"),
        ("postgresql://host:port/db", "is not a database URL"),
    ],
)
def test_a_bad_url_or_an_unreachable_server_is_one_line_and_exit_2(url, says):
    done = cli("info", "--store", url)
    assert done.returncode == 2, done.stderr
    assert says in done.stderr and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "secret" not in done.stderr


@pytest.mark.model
def test_cli_index_search_info_on_a_store(tmp_path, pg_url, default_model_path):
    env = os.environ | {"E5SEARCH_HOME": str(default_model_path.parents[1])}
    empty = cli("info", "--store", pg_url)
    assert empty.returncode == 2 and "no complete index" in empty.stderr and empty.stderr.count("\n") == 1
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("Glaciers carve valleys.\n", encoding="utf-8")
    (folder / "b.txt").write_text("Коровы пасутся на лугу.\n", encoding="utf-8")
    index = cli("index", str(folder), "--store", pg_url, "--json", env=env)
    assert index.returncode == 0, index.stderr
    assert json.loads(index.stdout)["added"] == 2
    found = cli("search", "пасутся", "--store", pg_url, "--mode", "bm25", "--json", env=env)
    assert found.returncode == 0, found.stderr
    assert [h["doc_path"] for h in json.loads(found.stdout)["hits"]] == ["b.txt"]
    info = cli("info", "--store", pg_url, "--json", env=env)
    stats = json.loads(info.stdout)
    assert (stats["files"], stats["chunks"], stats["vectors"], stats["generation"]) == (2, 2, 2, 1)
