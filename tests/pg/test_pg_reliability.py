"""A PostgreSQL index under the situations a shared index lives in: kill -9 of a writer mid-run while readers
keep answering, a second writer, searches during re-indexes.

Real processes (tests/reliability/worker.py, the slowed fake encoder) against a real server; the expected
states are another database of the same server taken through the same folder states in this process, so every
ranked list and count is exact. (Not a folder index: FAISS and PostgreSQL order equal scores differently, which
tests/pg/test_pg_index.py allows for when it compares the two.) Marked ``pg`` and ``reliability``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from indexer.build.job import build_index
from indexer.search.index import Index
from indexer.storage.pg import WRITER_LOCK_KEY, engine_url
from tests.fakes import FakeEncoder
from tests.pg.server import PgServer
from tests.reliability.test_reliability import QUERIES, results, state_of, write_state, writer

pytestmark = [pytest.mark.pg, pytest.mark.reliability]
ROOT = Path(__file__).resolve().parents[2]


def replay(server: PgServer, tmp: Path, sequence: list[str]) -> list[dict]:
    """The observable state after each step of indexing ``sequence`` of folder states into a fresh database."""
    url = server.create_database(f"replay_{uuid.uuid4().hex[:8]}")
    folder, out = tmp / "replay-docs", []
    for state in sequence:
        write_state(folder, state)
        build_index(folder, url, encoder=FakeEncoder())
        out.append(state_of(url))
    return out


def cli_index(folder: Path, url: str, delay: float = 0.0) -> subprocess.Popen:
    """``e5search index FOLDER --store URL`` in a process of its own, the slowed fake encoder for the model."""
    cmd = [sys.executable, "-m", "tests.pg.slow_cli", "index", str(folder), "--store", url, "--quiet"]
    env = os.environ | {"E5SEARCH_TEST_DELAY": str(delay)}
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait_for_lock(url: str, pid: int, timeout: float = 60.0) -> None:
    """Until the process ``pid`` holds the store's writer lock (its connection names it)."""
    engine = create_engine(engine_url(url))
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                holder = conn.scalar(
                    text(
                        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                        "WHERE l.locktype = 'advisory' AND l.granted AND l.objid = (:k & 4294967295)"
                    ),
                    {"k": WRITER_LOCK_KEY},
                )
            if holder and f"PID {pid} " in holder:
                return
            time.sleep(0.05)
    finally:
        engine.dispose()
    raise AssertionError("the writer never took the lock")


class Searcher(threading.Thread):
    """A reader searching all the while in its own thread, recording what it saw."""

    def __init__(self, url: str, allowed: list[dict]):
        super().__init__(daemon=True)
        self.url, self.allowed = url, allowed
        self.stop = threading.Event()
        self.seen: list[int] = []  # index into ``allowed`` per search
        self.errors: list[str] = []

    def run(self) -> None:
        idx = Index.open(self.url, encoder=FakeEncoder())
        try:
            i = 0
            while not self.stop.is_set():
                mode, q = ("bm25", "dense", "hybrid")[i % 3], QUERIES[i % len(QUERIES)]
                got = results(idx, q, mode)
                match = [n for n, state in enumerate(self.allowed) if state[f"{mode}:{q}"] == got]
                if not match:
                    self.errors.append(f"{mode}:{q} -> {got}")
                self.seen.append(match[0] if match else -1)
                i += 1
        finally:
            idx.close()


def test_kill_9_mid_run_readers_keep_the_old_generation_and_the_next_run_completes(
    tmp_path, pg_url, pg_server
):
    old, new = replay(pg_server, tmp_path, ["A", "B"])
    folder = tmp_path / "docs"
    write_state(folder, "A")
    build_index(folder, pg_url, encoder=FakeEncoder())
    assert state_of(pg_url) == old
    reader = Searcher(pg_url, [old, new])
    reader.start()
    write_state(folder, "B")
    proc = cli_index(
        folder, pg_url, delay=0.3
    )  # ~4 s encoding the 12 changed files; killed 1 s after the lock
    wait_for_lock(pg_url, proc.pid)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)
    during = len(reader.seen)
    assert state_of(pg_url) == old  # the killed run left nothing
    assert cli_index(folder, pg_url).wait(timeout=120) == 0  # the lock died with the killed writer
    time.sleep(0.5)
    reader.stop.set()
    reader.join(timeout=60)
    assert not reader.errors, reader.errors[:3]
    assert during > 20 and set(reader.seen[:during]) == {0}  # only the old generation until the next run
    assert reader.seen[-1] == 1  # and the new one after it
    assert state_of(pg_url) == new


def test_a_second_writer_is_refused_in_one_line_or_queues_with_wait(tmp_path, pg_url, pg_server):
    _, expected = replay(pg_server, tmp_path, ["A", "B"])
    folder = tmp_path / "docs"
    write_state(folder, "A")
    build_index(folder, pg_url, encoder=FakeEncoder())
    write_state(folder, "B")
    first = writer(folder, pg_url, delay=0.5)  # ~6 s: long enough for two more processes to start
    wait_for_lock(pg_url, first.pid)
    second = cli_index(folder, pg_url)  # the CLI's own message and exit status
    _, err = second.communicate(timeout=60)
    assert second.returncode == 2 and f"being updated by e5search PID {first.pid} " in err and "--wait" in err
    assert err.startswith("e5search: error: ") and err.count("\n") == 1
    queued = writer(folder, pg_url, "--wait")
    assert first.wait(timeout=120) == 0 and queued.wait(timeout=120) == 0
    assert state_of(pg_url) == expected


def test_searches_during_reindexes_see_the_old_or_the_new_generation(tmp_path, pg_url, pg_server):
    sequence = ["A", "B", "A", "B"]
    expected = replay(pg_server, tmp_path, sequence)
    folder = tmp_path / "docs"
    write_state(folder, "A")
    build_index(folder, pg_url, encoder=FakeEncoder())
    for run in range(3):
        reader = Searcher(pg_url, [expected[run], expected[run + 1]])
        reader.start()
        write_state(folder, sequence[run + 1])
        assert writer(folder, pg_url, delay=0.01).wait(timeout=120) == 0
        time.sleep(0.3)
        reader.stop.set()
        reader.join(timeout=60)
        assert not reader.errors, (run, reader.errors[:3])
        assert reader.seen[-1] == 1 and sorted(reader.seen) == reader.seen  # old, then new, never back
    assert state_of(pg_url) == expected[-1]
