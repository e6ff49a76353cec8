"""Fixtures for trainer tests: a tiny random model and multilingual pairs, all on CPU."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "trainer"


@pytest.fixture(scope="session")
def pairs_path() -> Path:
    return FIXTURES / "pairs.jsonl"


@pytest.fixture(scope="session")
def corpus_texts(pairs_path: Path) -> list[str]:
    from trainer.data import read_pairs

    return [t for p in read_pairs(pairs_path) for t in (p.query, p.passage)]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, corpus_texts: list[str]) -> Path:
    """A tiny BERT sentence-transformers folder whose vocabulary covers the fixture texts."""
    from tests.trainer.tiny import make_tiny_model

    extra = (FIXTURES / "docs").rglob("*") if (FIXTURES / "docs").is_dir() else []
    texts = corpus_texts + [p.read_text(encoding="utf-8") for p in extra if p.is_file()]
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model", texts)


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Tiny models run fastest on one thread; on a loaded 2-core machine extra threads only spin."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
