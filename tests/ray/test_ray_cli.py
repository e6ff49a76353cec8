"""``e5search index --ray``: the real command on a real cluster with a real (tiny) model, and its bad input."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ray.test_ray_index import WORDS, cached_vectors, chunk_rows, write_corpus

ROOT = Path(__file__).resolve().parents[2]


def e5search(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "e5search", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)


def test_help_imports_no_ray():
    code = (
        "import sys, e5search.cli as c\n"
        "for argv in (['--help'], ['index', '--help']):\n"
        "    try:\n        c.main(argv)\n    except SystemExit:\n        pass\n"
        "print('ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing answers there


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--ray", "127.0.0.1:{port}"], "no Ray cluster answers there"),
        (["--ray", "nowhere"], "give HOST:PORT of a Ray head"),
        (["--ray-workers", "2"], "--ray-workers 2 needs --ray"),
        (["--ray", "auto", "--watch"], "--ray with --watch"),
    ],
)
def test_bad_ray_flags_are_one_line_and_exit_2(tmp_path, flags, message):
    docs = write_corpus(tmp_path / "docs", files=2)
    flags = [f.format(port=_closed_port()) for f in flags]
    out = e5search("index", str(docs), "--index", str(tmp_path / "idx"), *flags)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "idx" / "index.sqlite").exists()  # nothing written


def test_without_ray_installed_the_fix_is_named(tmp_path):
    """ray made unimportable for the command (a package of that name that raises ImportError, first on the path)."""
    blocker = tmp_path / "blocked" / "ray"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError(\"No module named 'ray'\")\n")
    docs = write_corpus(tmp_path / "docs", files=2)
    env = {**os.environ, "PYTHONPATH": str(blocker.parent), "RAY_TMPDIR": str(tmp_path)}
    env.pop("RAY_ADDRESS", None)
    out = e5search("index", str(docs), "--index", str(tmp_path / "idx"), "--ray", "auto", env=env)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip() == "e5search: error: ray is not installed: pip install 'e5search[ray]'"
    assert not (tmp_path / "idx" / "index.sqlite").exists()


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    from tests.trainer.tiny import make_tiny_model

    return make_tiny_model(
        tmp_path / "tiny", [w for words in WORDS.values() for w in words.split()], dropout=0.0
    )


@pytest.mark.ray
def test_index_ray_on_a_real_model_matches_a_local_run(ray_address, tiny_model, tmp_path, monkeypatch):
    """The command end to end (torch fp32 on the workers); the local runs in this process share its cache home."""
    from indexer.build.job import build_index
    from indexer.config import IndexConfig, ModelConfig
    from indexer.encoding.encoder import Encoder

    monkeypatch.setenv("E5SEARCH_HOME", str(tmp_path / "home"))
    docs = write_corpus(tmp_path / "docs", files=10)
    config = IndexConfig(model=ModelConfig(model=str(tiny_model), backend="torch", batch_size=8))
    local_encoder = Encoder(config.model)
    local = build_index(docs, tmp_path / "local", config, encoder=local_encoder)
    model = ["--model", str(tiny_model), "--backend", "torch", "--batch-size", "8", "--json"]
    flags = ["--ray", "auto", "--ray-workers", "2"]
    ray = e5search("index", str(docs), "--index", str(tmp_path / "ray"), *model, *flags)
    assert ray.returncode == 0, ray.stderr
    there = json.loads(ray.stdout)
    assert there["chunks"] == there["chunks_encoded"] == local.chunks > 20
    assert chunk_rows(tmp_path / "ray") == chunk_rows(tmp_path / "local")
    a, b = cached_vectors(tmp_path / "local"), cached_vectors(tmp_path / "ray")
    assert a.keys() == b.keys()
    cosines = [float(a[h] @ b[h]) for h in a]  # unit vectors; torch fp32 in other batches
    assert min(cosines) > 0.99999
    again = build_index(docs, tmp_path / "ray", config, encoder=local_encoder, repair=True)
    assert again.chunks_encoded == 0 and again.chunks == local.chunks  # a local run after Ray: all cached
