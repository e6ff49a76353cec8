"""Reliability under the situations users live in: two writers on one index, searches while it is rebuilt, kill -9
anywhere in a run, damaged files, and bad input at the command line.

Real processes, a real SQLite file, real FAISS and BM25 files; the encoder is the deterministic fake (slowed
down in the writer processes so a run lasts long enough to be raced or killed), so every expected result is
exact. Marked ``reliability``; CI runs them.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from indexer.build.job import build_index
from indexer.errors import IndexBusyError, IndexDamagedError, IndexingInterrupted, IndexStateError
from indexer.search.index import Index
from tests.fakes import FakeEncoder

pytestmark = pytest.mark.reliability
ROOT = Path(__file__).resolve().parents[2]
WORDS = [
    "river",
    "mountain",
    "glacier",
    "harbour",
    "orchard",
    "meadow",
    "canyon",
    "island",
    "forest",
    "desert",
    "lagoon",
    "valley",
]
QUERIES = ["river glacier", "orchard 7", "desert lagoon 12", "meadow 3 island"]


def write_state(folder: Path, state: str, n: int = 24) -> None:
    """State "A": files 0..n-1; state "B": a third of them edited, a few removed, a few added."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for i in range(n + (4 if state == "B" else 0)):
        if state == "B" and i % 7 == 0:
            continue  # removed in B
        edited = state == "B" and i % 3 == 0
        words = (
            [WORDS[(i + j) % len(WORDS)] for j in range(6)]
            + [str(i)]
            + (["edited", "orchard"] if edited else [])
        )
        (folder / f"doc{i:02d}.txt").write_text(" ".join(words) + ".\n", encoding="utf-8")


def state_of(index_dir: Path) -> dict:
    """What a user can observe: counts that must agree, and ranked documents with scores per mode and query."""
    idx = Index.open(index_dir, encoder=FakeEncoder())
    try:
        stats = idx.stats()
        out = {
            "files": stats["files"],
            "chunks": stats["chunks"],
            "vectors": stats["vectors"],
            "bm25": len(idx.bm25),
        }
        for mode in ("bm25", "dense", "hybrid"):
            for q in QUERIES:
                out[f"{mode}:{q}"] = results(idx, q, mode)
        return out
    finally:
        idx.close()


def results(idx: Index, query: str, mode: str) -> list[tuple[str, float]]:
    return [(h.doc_path, round(h.score, 5)) for h in idx.search(query, mode=mode, k=5).hits]


@pytest.fixture(scope="module")
def states(tmp_path_factory) -> dict[str, dict]:
    """The observable state of a clean build of A and of B."""
    base = tmp_path_factory.mktemp("states")
    out = {}
    for name in ("A", "B"):
        write_state(base / name, name)
        build_index(base / name, base / f"idx{name}", encoder=FakeEncoder())
        out[name] = state_of(base / f"idx{name}")
        assert out[name]["chunks"] == out[name]["vectors"] == out[name]["bm25"] > 0
    assert out["A"] != out["B"]
    return out


def replay(tmp: Path, sequence: list[str]) -> list[dict]:
    """The observable state after each step of indexing ``sequence`` of folder states into one index, in this
    process: the reference a run in another process must match (incremental runs give the same chunk ids, and
    ties between equal scores are broken by chunk id, so a clean build is not the reference for an update)."""
    folder, idx, out = tmp / "replay-docs", tmp / "replay-idx", []
    for state in sequence:
        write_state(folder, state)
        build_index(folder, idx, encoder=FakeEncoder())
        out.append(state_of(idx))
    return out


def writer(folder: Path, index_dir: Path, *flags: str, delay: float = 0.0) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "tests.reliability.worker",
        str(folder),
        str(index_dir),
        "--delay",
        str(delay),
        *flags,
    ]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_lock(index_dir: Path, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    lock = index_dir / "index.lock"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lock.exists() and f"PID {proc.pid} " in lock.read_text(encoding="utf-8", errors="replace"):
            return
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.02)
    raise AssertionError("the writer never took the lock")


# ------------------------------------------------------------------------------------------- two writers
def test_a_second_writer_is_refused_or_queues_and_the_final_state_is_exact(tmp_path, states):
    folder, idx = tmp_path / "docs", tmp_path / "idx"
    write_state(folder, "B")
    first = writer(folder, idx, delay=0.05)  # ~1.5 s of encoding
    wait_for_lock(idx, first)
    second = writer(folder, idx)
    _, err = second.communicate(timeout=60)
    assert second.returncode == 2 and f"being updated by PID {first.pid} " in err and "--wait" in err
    assert err.count("\n") == 1  # one line
    queued = writer(folder, idx, "--wait")
    assert first.wait(timeout=120) == 0 and queued.wait(timeout=120) == 0
    assert state_of(idx) == states["B"]


def test_two_jobs_in_one_process_are_serialised_too(tmp_path):
    """The app's Index page runs jobs in its own process: a second job there is refused the same way."""
    folder, idx = tmp_path / "docs", tmp_path / "idx"
    write_state(folder, "A")
    started, errors = threading.Event(), []

    class Blocking(FakeEncoder):
        def encode_passages(self, texts, show_progress=False):
            started.set()
            time.sleep(1.0)
            return super().encode_passages(texts, show_progress)

    job = threading.Thread(target=lambda: build_index(folder, idx, encoder=Blocking()))
    job.start()
    assert started.wait(30)
    with pytest.raises(IndexBusyError, match="being updated by PID"):
        build_index(folder, idx, encoder=FakeEncoder())
    job.join()
    assert not errors


# ------------------------------------------------------------------------------ readers during re-indexes
def test_searches_during_five_reindexes_see_the_old_or_the_new_index(tmp_path):
    folder, idx = tmp_path / "docs", tmp_path / "idx"
    sequence = ["A", "B", "A", "B", "A", "B"]
    expected = replay(tmp_path, sequence)
    write_state(folder, "A")
    build_index(folder, idx, encoder=FakeEncoder())
    reader = Index.open(idx, encoder=FakeEncoder())  # one long-lived reader, like the app's
    cli_results: list[tuple[str, str, str]] = []
    checked = 0
    for run in range(5):
        old, new = expected[run], expected[run + 1]
        write_state(folder, sequence[run + 1])
        proc = writer(folder, idx, delay=0.02)
        allowed = {q: [old[f"bm25:{q}"], new[f"bm25:{q}"]] for q in QUERIES}
        cli = threading.Thread(target=_cli_searches, args=(idx, proc, cli_results, allowed))
        cli.start()
        rng = random.Random(run)
        while proc.poll() is None:
            mode, q = rng.choice(["bm25", "dense", "hybrid"]), rng.choice(QUERIES)
            got = results(reader, q, mode)
            assert got in (old[f"{mode}:{q}"], new[f"{mode}:{q}"]), (run, mode, q)
            checked += 1
        cli.join()
        assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
        for q in QUERIES:  # once the run is done, only the new index
            assert results(reader, q, "hybrid") == new[f"hybrid:{q}"]
    reader.close()
    print(f"{checked} searches from one reader and {len(cli_results)} CLI searches during 5 re-indexes")
    assert checked >= 1000, checked
    assert cli_results and all(ok == "ok" for ok, _, _ in cli_results), cli_results[:3]


def _cli_searches(idx: Path, proc: subprocess.Popen, out: list, allowed: dict[str, list]) -> None:
    """Short-lived CLI searches (BM25: no model needed) while the writer runs; each loads one generation."""
    while proc.poll() is None:
        q = QUERIES[len(out) % len(QUERIES)]
        cmd = [
            sys.executable,
            "-c",
            "import sys; from e5search.cli import main; sys.exit(main())",
            "search",
            q,
            "--index",
            str(idx),
            "--mode",
            "bm25",
            "-k",
            "5",
            "--json",
        ]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            out.append(("error", q, done.stderr.strip()))
            continue
        hits = [(h["doc_path"], round(h["score"], 5)) for h in json.loads(done.stdout)["hits"]]
        out.append(("ok" if hits in allowed[q] else "wrong", q, str(hits)))


# --------------------------------------------------------------------------------------- kill -9 anywhere
def test_kill_9_at_20_points_leaves_the_old_or_the_new_index(tmp_path):
    old, new = replay(tmp_path, ["A", "B"])
    folder, base = tmp_path / "docs", tmp_path / "base"
    write_state(folder, "A")
    build_index(folder, base, encoder=FakeEncoder())
    write_state(folder, "B")
    t0 = time.monotonic()  # how long a run A -> B takes, to spread the kills over all its phases
    probe = writer(folder, _copy(base, tmp_path / "probe"), delay=0.02)
    assert probe.wait(timeout=120) == 0
    duration = time.monotonic() - t0
    rng = random.Random(20261205)
    outcomes = []
    for point in sorted(rng.uniform(0.0, duration * 1.1) for _ in range(20)):
        idx = _copy(base, tmp_path / "kill")
        proc = writer(folder, idx, delay=0.02)
        time.sleep(point)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        seen = state_of(idx)
        assert seen in (old, new), f"killed at {point:.2f}s of {duration:.2f}s"
        outcomes.append("old" if seen == old else "new")
        assert writer(folder, idx).wait(timeout=120) == 0  # the next run completes it
        assert state_of(idx) == new
    assert "old" in outcomes  # the kills did land mid-run
    print(f"kill -9 outcomes over {duration:.2f}s runs: {outcomes}")


def _copy(src: Path, dst: Path) -> Path:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    return dst


def test_ctrl_c_says_whether_the_new_index_was_committed(tmp_path, monkeypatch):
    from indexer.storage.layout import Layout

    folder, idx = tmp_path / "docs", tmp_path / "idx"
    write_state(folder, "A")
    build_index(folder, idx, encoder=FakeEncoder())
    write_state(folder, "B")

    def interrupted(self, keep):
        raise KeyboardInterrupt

    monkeypatch.setattr(
        Layout, "remove_generations", interrupted
    )  # runs once before and once after the commit
    with pytest.raises(IndexingInterrupted) as info:
        build_index(folder, idx, encoder=FakeEncoder())
    assert info.value.committed is False
    calls = []

    def after_commit(self, keep):
        calls.append(keep)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(Layout, "remove_generations", after_commit)
    with pytest.raises(IndexingInterrupted) as info:
        build_index(folder, idx, encoder=FakeEncoder())
    assert info.value.committed is True

    from e5search import cli
    from indexer.build import job

    def raise_committed(*a, **kw):
        raise IndexingInterrupted(committed=True)

    monkeypatch.setattr(job, "build_index", raise_committed)
    assert cli.main(["index", str(folder), "--index", str(idx)]) == 130


# ----------------------------------------------------------------------------------------- damaged files
@pytest.mark.parametrize("damage", ["missing dense", "truncated dense", "truncated bm25"])
def test_a_damaged_generation_is_an_error_naming_repair_and_repair_fixes_it(tmp_path, states, damage):
    folder, idx = tmp_path / "docs", tmp_path / "idx"
    write_state(folder, "B")
    build_index(folder, idx, encoder=FakeEncoder())
    gen = Index.open(idx, encoder=FakeEncoder()).generation
    dense, bm25 = idx / f"dense-{gen:06d}.faiss", idx / f"bm25-{gen:06d}"
    if damage == "missing dense":
        dense.unlink()
    elif damage == "truncated dense":
        dense.write_bytes(dense.read_bytes()[:100])
    else:
        biggest = max((p for p in bm25.iterdir() if p.suffix == ".npy"), key=lambda p: p.stat().st_size)
        biggest.write_bytes(biggest.read_bytes()[:60])
    with pytest.raises(IndexDamagedError, match="--repair"):
        state_of(idx)
    if damage == "missing dense":  # a run that would otherwise change nothing still refuses a broken index
        with pytest.raises(IndexDamagedError, match="--repair"):
            build_index(folder, idx, encoder=FakeEncoder())
    enc = FakeEncoder()
    summary = build_index(folder, idx, encoder=enc, repair=True)
    assert summary.chunks_encoded == 0 and sum(enc.calls) == 0  # every vector came from the embedding cache
    assert state_of(idx) == states["B"]


# ------------------------------------------------------------------------------------------- the CLI
def run_cli(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", "import sys; from e5search.cli import main; sys.exit(main())", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def assert_one_line_error(done: subprocess.CompletedProcess, *words: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("e5search: error:"), done.stderr
    assert "Traceback" not in done.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


def test_cli_bad_index_files_get_one_line(tmp_path):
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "index.sqlite").write_bytes(os.urandom(4096))
    assert_one_line_error(run_cli("info", "--index", str(garbage)), "not a readable e5search index")

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    with sqlite3.connect(foreign / "index.sqlite") as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.execute("INSERT INTO notes VALUES ('mine')")
    before = (foreign / "index.sqlite").read_bytes()
    assert_one_line_error(run_cli("info", "--index", str(foreign)), "not an e5search index")
    docs = tmp_path / "docs"
    write_state(docs, "A")
    assert_one_line_error(run_cli("index", str(docs), "--index", str(foreign)), "not an e5search index")
    assert (foreign / "index.sqlite").read_bytes() == before  # nothing of another program's was touched

    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "dense-000001.faiss").write_bytes(b"someone else's")
    assert_one_line_error(run_cli("index", str(docs), "--index", str(stray)), "no e5search index")
    assert (stray / "dense-000001.faiss").read_bytes() == b"someone else's"

    idx = tmp_path / "idx"
    build_index(docs, idx, encoder=FakeEncoder())
    dense = next(idx.glob("dense-*.faiss"))
    dense.write_bytes(dense.read_bytes()[:64])
    assert_one_line_error(run_cli("info", "--index", str(idx)), "--repair")


def test_cli_bad_queries_files_get_one_line(tmp_path):
    (tmp_path / "binary.jsonl").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "folder.jsonl").mkdir()
    for name, words in (
        ("missing.jsonl", "No such file"),
        ("folder.jsonl", "directory"),
        ("binary.jsonl", "UTF-8"),
    ):
        done = run_cli("search", "--queries", str(tmp_path / name), "--index", str(tmp_path / "idx"))
        assert_one_line_error(done, "--queries", words)


# -------------------------------------------------------------------------------------- removing an index
def test_remove_touches_only_our_own_index_and_never_a_running_one(tmp_path):
    from indexer.storage.layout import remove_index

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    with sqlite3.connect(foreign / "index.sqlite") as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    (foreign / "dense-000001.faiss").write_bytes(b"theirs")
    before = {p.name: p.read_bytes() for p in foreign.iterdir()}
    with pytest.raises(IndexStateError, match="not an e5search index"):
        remove_index(foreign)
    assert {p.name: p.read_bytes() for p in foreign.iterdir()} == before

    folder, idx = tmp_path / "docs", tmp_path / "idx"
    write_state(folder, "A")
    build_index(folder, idx, encoder=FakeEncoder())
    (idx / "notes.txt").write_text("mine", encoding="utf-8")
    proc = writer(folder, idx, "--wait", delay=0.2)
    write_state(folder, "B")
    wait_for_lock(idx, proc)
    with pytest.raises(IndexBusyError):
        remove_index(idx)
    assert proc.wait(timeout=120) == 0
    removed = remove_index(idx)
    assert "index.sqlite" in removed and "embcache.sqlite" in removed
    assert [p.name for p in idx.iterdir()] == ["notes.txt"]
