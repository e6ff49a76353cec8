"""Fixtures for the app tests: the fixture corpus, a FakeEncoder index of it, and a tiny real cross-encoder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from indexer.build.job import build_index
from tests.fakes import FakeEncoder

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "app"
CORPUS = FIXTURES / "corpus"  # example queries for it: corpus_queries.jsonl beside it
BEIR = FIXTURES / "beir"


def make_tiny_cross_encoder(folder: Path) -> Path:
    """A real sentence-transformers CrossEncoder folder: a 2-layer BERT with random weights (seeded).

    Its scores mean nothing, but it runs the whole reranking path, offline, in milliseconds.
    """
    import string

    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    chars = string.ascii_lowercase + string.digits
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars)]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=1,
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_reranker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_cross_encoder(tmp_path_factory.mktemp("tiny_cross_encoder"))


@pytest.fixture(scope="module")
def fake_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture corpus indexed with the FakeEncoder (read-only: tests that change an index make their own)."""
    index_dir = tmp_path_factory.mktemp("app_index") / "index"
    build_index(CORPUS, index_dir, encoder=FakeEncoder())
    return index_dir


@pytest.fixture()
def corpus_copy(tmp_path: Path) -> Path:
    """A writable copy of the fixture corpus."""
    return Path(shutil.copytree(CORPUS, tmp_path / "corpus"))
