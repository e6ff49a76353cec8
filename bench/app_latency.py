"""The search page's latency on the sample corpus with the real default model, without reranking.

The bar (issue 3): once the model and index are loaded, a query's three columns (BM25 | Dense | Hybrid) are
ready in under a second on a 2-core CPU. Timed through the same cached service calls the page makes; the dense
column's best-sentence marks are drawn after the results and reported separately. Run by hand:

    python bench/app_latency.py        # writes bench/results/app_latency.md
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    from app import service
    from indexer.build.job import build_index

    queries = [
        json.loads(line)["text"]
        for line in (ROOT / "data" / "sample_queries.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    with tempfile.TemporaryDirectory() as tmp:
        build_index(ROOT / "data" / "sample", Path(tmp) / "index")
        idx = service.open_index(Path(tmp) / "index")
        key = service.index_key(idx)
        results_s, sentences_s = [], []
        for query in queries:
            request = service.Request(query)
            t0 = time.perf_counter()
            service.search_columns(idx, key, request)
            t1 = time.perf_counter()
            service.sentence_snippets(idx, key, request)
            results_s.append(t1 - t0)
            sentences_s.append(time.perf_counter() - t1)
    later = results_s[1:]
    load = os.getloadavg()[0]
    text = (
        f"# App search latency ({date.today()}, {os.cpu_count()} CPUs, load average {load:.1f} at the end)\n\n"
        f"data/sample, {len(queries)} example queries, default model, no reranking; three columns per query.\n\n"
        "| | ms |\n|---|---:|\n"
        f"| first query (cold caches) | {results_s[0] * 1e3:.0f} |\n"
        f"| second query | {results_s[1] * 1e3:.0f} |\n"
        f"| later queries p50 | {statistics.median(later) * 1e3:.0f} |\n"
        f"| later queries max | {max(later) * 1e3:.0f} |\n"
        f"| best-sentence marks p50 (after the results) | {statistics.median(sentences_s[1:]) * 1e3:.0f} |\n"
    )
    print(text)
    (ROOT / "bench" / "results" / "app_latency.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
