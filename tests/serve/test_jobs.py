"""Indexing over the API and a server that follows the index: POST /index then GET /jobs/{id}, one job at a
time, failures as one line, a rebuild by ``e5search index`` in another process picked up, 16 clients at once.
A real uvicorn server on 127.0.0.1, real HTTP, real SQLite/FAISS/BM25 files; the fake encoder."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

from indexer.storage.lock import writer_lock
from serve.config import ServeConfig
from serve.served import Query, ServedIndex
from serve.server import ServerThread
from tests.reliability.worker import SlowEncoder
from tests.serve.conftest import ROOT, TOKEN, client


def _wait_done(api, job_id: str, timeout: float = 120) -> tuple[dict, set[str]]:
    """The finished job's record, and the progress stages seen while polling."""
    deadline, stages = time.monotonic() + timeout, set()
    while time.monotonic() < deadline:
        record = api.get(f"/jobs/{job_id}").json()
        stages.add(record["progress"]["stage"])
        if record["state"] != "running":
            return record, stages
        time.sleep(0.05)
    raise TimeoutError(f"job {job_id} still running after {timeout} s")


def _top(api, query: str, mode: str = "bm25") -> str | None:
    hits = api.post("/search", json={"query": query, "mode": mode, "k": 1}).json()["hits"]
    return hits[0]["doc_path"] if hits else None


def test_post_index_runs_a_job_a_second_is_409_and_search_sees_the_new_document(folder_index):
    folder, index = folder_index
    served = ServedIndex(str(index), encoder=SlowEncoder(0.05))  # ~2 s of encoding: the job is caught running
    with ServerThread(served, ServeConfig(port=0, token=TOKEN)) as url, client(url) as api:
        assert _top(api, "quokka Rottnest") is None
        for i in range(40):
            (folder / "new" / f"n{i}.txt").parent.mkdir(exist_ok=True)
            (folder / "new" / f"n{i}.txt").write_text(f"Quokka number {i} lives on Rottnest island.\n")
        started = api.post("/index")
        assert started.status_code == 202, started.text
        job = started.json()
        assert job["state"] == "running" and started.headers["location"] == f"/jobs/{job['id']}"
        assert job["path"] == str(folder.resolve())
        second = api.post("/index", json={"path": "new"})
        assert second.status_code == 409 and job["id"] in second.json()["error"]
        record, stages = _wait_done(api, job["id"])
        assert record["state"] == "done", record
        assert record["summary"]["added"] == 40 and record["summary"]["unchanged"] == 10
        assert record["error"] is None and record["finished_at"] >= record["started_at"]
        assert stages & {"reading", "encoding", "writing"}, stages
        assert _top(api, "quokka Rottnest").startswith("new/n")
        assert _top(api, "quokka Rottnest", mode="hybrid").startswith("new/n")
        again = api.post("/index", json={"path": "new"})  # relative to the source folder; nothing changed
        assert again.status_code == 202
        assert _wait_done(api, again.json()["id"])[0]["summary"]["unchanged"] == 40
    served.close()


def test_a_failed_job_says_why_in_one_line(api, folder_index, tmp_path):
    folder, index = folder_index
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    record, _ = _wait_done(api, api.post("/index", json={"path": str(outside)}).json()["id"])
    assert record["state"] == "failed" and "outside it" in record["error"] and "\n" not in record["error"]
    with writer_lock(index):  # a writer elsewhere holds the index
        record, _ = _wait_done(api, api.post("/index").json()["id"])
    assert record["state"] == "failed" and "being updated by PID" in record["error"]
    record, _ = _wait_done(api, api.post("/index", json={}).json()["id"])  # and the next one runs
    assert record["state"] == "done" and record["summary"]["unchanged"] == 10
    assert api.get("/jobs/0123").status_code == 404


def test_an_index_rebuilt_by_another_process_is_picked_up(api, folder_index):
    folder, index = folder_index
    before = api.get("/info").json()["generation"]
    assert _top(api, "axolotl Xochimilco") is None
    (folder / "mx_axolotl.txt").write_text("The axolotl lives in the canals of Xochimilco.\n")
    done = subprocess.run(
        [sys.executable, "-m", "tests.serve.fake_cli", "index", str(folder), "--index", str(index), "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["added"] == 1
    assert _top(api, "axolotl Xochimilco") == "mx_axolotl.txt"
    assert _top(api, "axolotl Xochimilco", mode="dense") == "mx_axolotl.txt"
    assert api.get("/info").json()["generation"] == before + 1


def test_16_concurrent_clients_get_the_answers_one_client_gets(api, served):
    queries = ["Rhein Brot", "tea", "Volga river", "glacier", "paella rice", "fromage", "Fuji", "calligraphy"]
    asks = [(q, m) for q in queries for m in ("bm25", "dense", "hybrid")]
    expected = {}
    for q, m in asks:  # one at a time, no HTTP
        (record,) = served.search([Query(q)], mode=m, k=5)
        record.pop("timings_ms")
        expected[q, m] = record
    url, wrong, seen = str(api.base_url), [], []

    def worker(n: int) -> None:
        with client(url) as http:
            for i in range(12):
                q, m = asks[(n * 5 + i) % len(asks)]
                got = http.post("/search", json={"query": q, "mode": m, "k": 5})
                record = got.json() if got.status_code == 200 else {"error": got.text}
                record.pop("timings_ms", None)
                seen.append(1)
                if record != expected[q, m]:
                    wrong.append((q, m, record))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(seen) == 16 * 12
    assert not wrong, wrong[:2]


def test_searches_during_a_job_see_the_old_or_the_new_index(folder_index):
    """16 clients search while POST /index re-indexes (a slow encoder keeps the job running): every answer is the
    index before the job or the index after it, never a mix; after the job, only the new one."""
    folder, index = folder_index
    queries = ["Rhein Brot", "tea", "Volga", "glacier ice", "paella"]
    served = ServedIndex(str(index), encoder=SlowEncoder(0.02))
    with ServerThread(served, ServeConfig(port=0, token=TOKEN)) as url, client(url) as api:

        def answer(http, q: str, mode: str) -> list:
            hits = http.post("/search", json={"query": q, "mode": mode, "k": 5}).json()["hits"]
            return [(h["doc_path"], round(h["score"], 5)) for h in hits]

        asks = [(q, m) for q in queries for m in ("bm25", "hybrid")]
        old = {a: answer(api, *a) for a in asks}
        for i in range(30):  # new documents that share the queries' words: the answers change
            (folder / f"more_{i}.txt").write_text(
                f"{queries[i % 5]} note {i}: more about {queries[(i + 1) % 5]}."
            )
        (folder / "de_rhein_brot.txt").unlink()
        job = api.post("/index").json()
        seen: list[tuple] = []

        def worker(n: int) -> None:
            with client(url) as http:
                while api.get(f"/jobs/{job['id']}").json()["state"] == "running":
                    a = asks[(n + len(seen)) % len(asks)]
                    seen.append((a, answer(http, *a)))

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert _wait_done(api, job["id"])[0]["state"] == "done"
        new = {a: answer(api, *a) for a in asks}
    served.close()
    assert sum(old[a] != new[a] for a in asks) >= len(asks) // 2  # the job changed most answers
    assert len(seen) >= 16, len(seen)
    wrong = [(a, got) for a, got in seen if got not in (old[a], new[a])]
    assert not wrong, wrong[:2]
    n_new = sum(got == new[a] != old[a] for a, got in seen)
    print(f"{len(seen)} searches during the job: {n_new} saw the new index, the rest the old")
