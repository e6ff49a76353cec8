"""Two ``e5search serve`` replicas over one PostgreSQL index: a job started through one is answered by the other.

Real processes (``e5search`` with the fake encoder, tests/serve/fake_cli.py), real HTTP on 127.0.0.1, a real
server (tests/pg/conftest.py). Marked ``pg``.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from indexer.build.job import build_index
from tests.fakes import FakeEncoder

pytestmark = pytest.mark.pg
ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "tests" / "fixtures" / "docs"
TOKEN = "replica-token-81c2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_replica(url: str) -> tuple[subprocess.Popen, httpx.Client]:
    port = free_port()
    cmd = [sys.executable, "-m", "tests.serve.fake_cli", "serve", "--store", url, "--port", str(port)]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env()
    )
    http = httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {TOKEN}"},
        trust_env=False,
        timeout=60,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            if http.get("/health").status_code == 200:
                return proc, http
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("the replica never answered /health")


def _env() -> dict:
    import os

    return os.environ | {"E5SEARCH_TOKEN": TOKEN}


@pytest.fixture
def replicas(tmp_path, pg_url) -> Iterator[tuple[Path, list[httpx.Client]]]:
    folder = Path(shutil.copytree(DOCS, tmp_path / "docs"))
    build_index(folder, pg_url, encoder=FakeEncoder())
    started = [start_replica(pg_url) for _ in range(2)]
    try:
        yield folder, [http for _, http in started]
    finally:
        for proc, http in started:
            http.close()
            proc.terminate()
            proc.wait(timeout=30)


def top(http: httpx.Client, query: str, mode: str) -> str | None:
    answer = http.post("/search", json={"query": query, "mode": mode, "k": 1})
    assert answer.status_code == 200, answer.text
    hits = answer.json()["hits"]
    return hits[0]["doc_path"] if hits else None


def test_index_through_one_replica_and_the_other_answers_with_the_new_generation(replicas):
    folder, (one, other) = replicas
    assert one.get("/info").json()["generation"] == other.get("/info").json()["generation"] == 1
    assert top(other, "quokka Rottnest", "bm25") is None
    (folder / "quokka.txt").write_text("The quokka lives on Rottnest island.\n", encoding="utf-8")
    started = one.post("/index")
    assert started.status_code == 202, started.text
    job_id = started.json()["id"]
    deadline = time.monotonic() + 120
    while (record := one.get(f"/jobs/{job_id}").json())["state"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert record["state"] == "done" and record["summary"]["added"] == 1, record
    info = other.get("/info").json()
    assert info["generation"] == 2 and info["files"] == record["summary"]["unchanged"] + 1
    for mode in ("bm25", "dense", "hybrid"):
        assert top(other, "quokka Rottnest", mode) == "quokka.txt", mode
    assert (
        other.post("/search", json={"query": "quokka"}, headers={"Authorization": "Bearer wrong"}).status_code
        == 401
    )


def test_kill_9_of_an_indexing_job_leaves_both_replicas_on_the_old_generation(replicas, pg_url):
    from tests.pg.test_pg_reliability import cli_index, wait_for_lock

    folder, served = replicas
    for i in range(6):
        (folder / f"quokka{i}.txt").write_text(f"Quokka {i} lives on Rottnest island.\n", encoding="utf-8")
    job = cli_index(folder, pg_url, delay=1.0)  # ~6 s encoding the new files
    wait_for_lock(pg_url, job.pid)
    answers = 0
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:  # while the job runs
        for http in served:
            assert (
                http.get("/info").json()["generation"] == 1 and top(http, "quokka Rottnest", "bm25") is None
            )
            answers += 1
    job.send_signal(signal.SIGKILL)
    job.wait()
    for http in served:  # after the kill: still the old generation, whole
        assert (
            http.get("/info").json()["generation"] == 1
            and top(http, "quokka Rottnest", "hybrid") != "quokka0.txt"
        )
    assert answers >= 2  # each replica answered while the job ran
    assert cli_index(folder, pg_url).wait(timeout=120) == 0  # the next run completes
    for http in served:
        info = http.get("/info").json()
        assert info["generation"] == 2 and info["chunks"] == info["vectors"]
        assert top(http, "quokka Rottnest", "bm25").startswith("quokka")
