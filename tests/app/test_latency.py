"""The search page's latency on the sample corpus with the real default model, without reranking.

The issue's bar: once the model and index are loaded, a query's three columns are ready in under a second on a
2-core CPU. On a machine busy with other jobs (load above 1.5 per core) a miss is reported as a skip. Timed here through the same cached service calls the page makes; the best-sentence marks of the dense
column are drawn after the results and are reported, not held to the bar.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

import pytest

from app import service

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample"
QUERIES = ROOT / "data" / "sample_queries.jsonl"

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(
        not (SAMPLE.is_dir() and QUERIES.is_file()), reason="needs data/sample and its queries"
    ),
]


@pytest.fixture(scope="module")
def sample_index(tmp_path_factory: pytest.TempPathFactory, default_model_path: Path) -> Path:
    from indexer.build import build_index
    from indexer.config import IndexConfig, ModelConfig

    index_dir = tmp_path_factory.mktemp("latency") / "index"
    build_index(SAMPLE, index_dir, IndexConfig(model=ModelConfig(model=str(default_model_path))))
    return index_dir


def test_second_and_later_queries_answer_in_under_a_second(sample_index: Path):
    service.use_encoder(None)
    idx = service.open_index(sample_index)
    key = service.index_key(idx)
    queries = [
        json.loads(line)["text"] for line in QUERIES.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    results_s, sentences_s = [], []
    for query in queries[:6]:
        request = service.Request(query)
        t0 = time.perf_counter()
        columns = service.search_columns(idx, key, request)
        t1 = time.perf_counter()
        service.sentence_snippets(idx, key, request)
        results_s.append(t1 - t0)
        sentences_s.append(time.perf_counter() - t1)
        assert all(c.error is None for c in columns.values()), columns
        assert columns["dense"].hits and columns["hybrid"].hits
    later = statistics.median(results_s[1:])
    print(
        f"results: first {results_s[0] * 1e3:.0f} ms, second {results_s[1] * 1e3:.0f} ms, "
        f"median of 2-6 {later * 1e3:.0f} ms; best-sentence marks median "
        f"{statistics.median(sentences_s[1:]) * 1e3:.0f} ms"
    )
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if later >= 1.0 and load > 1.5 * cores:  # other jobs hold the CPU: a number, not a verdict
        pytest.skip(
            f"machine busy (load {load:.1f} on {cores} cores): queries 2-6 took {later:.2f} s (median)"
        )
    assert later < 1.0, f"queries 2-6 took {[round(s, 3) for s in results_s[1:]]} s"
