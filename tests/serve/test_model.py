"""``e5search serve`` end to end with the real default model, every part a real process: the CLI indexes, the
server answers what ``e5search search --json`` prints, 16 clients at once get the answers one client gets, and
a re-index by the CLI while the server runs is searched by the server next."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.app.live import free_port
from tests.serve.conftest import ROOT, TOKEN, client

pytestmark = pytest.mark.model

SAMPLE = ROOT / "data" / "sample"
FILES = [
    "de_imkerei.txt",
    "en_coffee_roasting.md",
    "ja_tea_ceremony.txt",
    "ar_date_palms.txt",
    "en_black_holes.html",
]
QUERIES = ["Wie werden Kaffeebohnen geröstet?", "茶道の作法", "how do bees make honey", "نخيل التمر"]


def cli(env: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "e5search", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@contextlib.contextmanager
def serving(env: dict, index: Path, log: Path) -> Iterator[str]:
    """``e5search serve`` on a free 127.0.0.1 port until the block ends (its process group stopped then)."""
    port = free_port()
    cmd = [sys.executable, "-m", "e5search", "serve", "--index", str(index), "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    with log.open("w") as out:
        server = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + 300
            while True:
                assert server.poll() is None, log.read_text()[-2000:]
                assert time.monotonic() < deadline, "e5search serve did not answer in 300 s"
                try:
                    if httpx.get(url + "/health", trust_env=False, timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.3)
            yield url
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)


def _untimed(record: dict) -> dict:
    record = dict(record)
    record.pop("timings_ms")
    for hit in record["hits"]:  # the same code in two processes; scores compared to 6 places
        hit["score"] = round(hit["score"], 6)
    return record


def test_serve_with_the_default_model(default_model_path: Path, tmp_path: Path):
    env = {**os.environ, "E5SEARCH_HOME": str(default_model_path.parents[1]), "E5SEARCH_TOKEN": TOKEN}
    folder, index = tmp_path / "docs", tmp_path / "idx"
    folder.mkdir()
    for name in FILES:
        shutil.copy(SAMPLE / name, folder)
    assert (
        json.loads(cli(env, "index", str(folder), "--index", str(index), "--json", "--quiet"))["added"] == 5
    )
    queries = tmp_path / "q.jsonl"
    items = [{"_id": f"q{i}", "text": q} for i, q in enumerate(QUERIES)]
    queries.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in items), encoding="utf-8")
    expected = [
        json.loads(line)
        for line in cli(env, "search", "--queries", str(queries), "--index", str(index)).splitlines()
    ]
    with serving(env, index, tmp_path / "serve.log") as url, client(url) as api:
        got = api.post("/search", json={"queries": items})
        assert got.status_code == 200, got.text
        assert [_untimed(r) for r in got.json()] == [_untimed(r) for r in expected]
        assert all(r["hits"] and r["fusion"]["method"] == "weighted" for r in got.json())
        assert api.get("/info").json()["model"]["fingerprint"]
        one_query = {
            q["text"]: {k: v for k, v in _untimed(r).items() if k != "_id"} for q, r in zip(items, expected)
        }
        _sixteen_clients(url, one_query)  # a lone query's record has no _id
        (folder / "new_otters.txt").write_text(
            "Sea otters hold hands while they sleep so they do not drift apart."
        )
        assert (
            json.loads(cli(env, "index", str(folder), "--index", str(index), "--json", "--quiet"))["added"]
            == 1
        )
        top = api.post("/search", json={"query": "Seeotter schlafen Hand in Hand", "k": 1}).json()["hits"][0]
        assert top["doc_path"] == "new_otters.txt"


def _sixteen_clients(url: str, expected: dict[str, dict]) -> None:
    wrong, done = [], []

    def worker(n: int) -> None:
        with client(url) as http:
            for i in range(4):
                query = QUERIES[(n + i) % len(QUERIES)]
                got = http.post("/search", json={"query": query})
                done.append(1)
                if got.status_code != 200 or _untimed(got.json()) != expected[query]:
                    wrong.append((query, got.status_code, got.text[:300]))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert len(done) == 64 and not wrong, wrong[:2]
