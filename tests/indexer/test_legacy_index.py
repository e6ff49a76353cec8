"""An index built before indexer/ was split into rooms opens and answers exactly as it did then.

``tests/fixtures/legacy_index`` was built at commit 83464f2 by ``tests/fixtures/make_legacy_index.py`` with the
fake encoder; ``legacy_expected.json`` holds what that code answered. The index is copied first: opening it
must not need write access to the fixture.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from indexer.config import SearchConfig
from indexer.search.index import Index
from tests.fakes import FakeEncoder

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="module")
def legacy(tmp_path_factory) -> Index:
    folder = tmp_path_factory.mktemp("legacy") / "index"
    shutil.copytree(FIXTURES / "legacy_index", folder)
    idx = Index.open(folder, encoder=FakeEncoder(), config=SearchConfig(fusion="rrf"))  # what hybrid was then
    yield idx
    idx.close()


@pytest.fixture(scope="module")
def expected() -> dict:
    return json.loads((FIXTURES / "legacy_expected.json").read_text(encoding="utf-8"))


def test_every_search_answers_as_before(legacy: Index, expected: dict):
    searches = [key for key in expected if key.split(":")[0] in ("bm25", "dense", "hybrid")]
    assert len(searches) == 21
    for key in searches:
        mode, query = key.split(":", 1)
        hits = legacy.search(query, mode=mode, k=5).hits
        got = [[h.chunk_id, round(h.score, 6), h.doc_path, h.lang] for h in hits]
        assert got == expected[key], key


def test_batch_retriever_and_stats_as_before(legacy: Index, expected: dict):
    run = legacy.retriever("hybrid").search({"q1": "glaciers melt", "q2": "Brot"}, k=3)
    assert {q: {d: round(s, 6) for d, s in docs.items()} for q, docs in run.items()} == expected[
        "retriever:hybrid"
    ]
    stats = legacy.stats()
    assert {k: stats[k] for k in expected["stats"]} == expected["stats"]
