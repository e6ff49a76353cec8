"""The fast GPU encoding path gives the model's own embeddings (checked on CPU in fp32: same code, no GPU needed)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from indexer.encoding.gpu_encode import GPUEncoder  # noqa: E402

SAMPLE = [
    "passage: Der schnelle braune Fuchs springt über den faulen Hund.",
    "passage: 東京は日本の首都であり、世界最大の都市圏の一つです。",
    "passage: x",
    "passage: Белки — высокомолекулярные органические вещества. " * 12,
    "passage: مرحبا بالعالم",
    "passage: The mitochondrion is the powerhouse of the cell, " * 40,  # > 512 tokens: truncated
    "passage: 한국어 문장입니다.",
    "passage: Un texte français assez court.",
]


@pytest.fixture(scope="module")
def default_st(default_model_path):
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(1)
    return SentenceTransformer(str(default_model_path), device="cpu")


@pytest.mark.parametrize("packed", [True, False])
def test_matches_sentence_transformers_on_the_default_model(default_st, packed):
    reference = default_st.encode(SAMPLE, batch_size=4)
    # a tiny token budget and window force many batches and windows, so ordering is exercised too
    fast = GPUEncoder(default_st, dtype=torch.float32, max_tokens=600, window=3, packed=packed).encode(SAMPLE)
    assert fast.shape == reference.shape and fast.dtype == np.float32
    cosine = (fast * reference).sum(1)
    assert cosine.min() > 0.99999, cosine
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)


def _tiny_xlmr(folder, texts):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules
    from transformers import XLMRobertaConfig, XLMRobertaModel

    from tests.trainer.tiny import _tokenizer

    tokenizer = _tokenizer(texts, 64)
    torch.manual_seed(0)
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=70,
        pad_token_id=0,
        type_vocab_size=1,
    )
    parts = folder / "parts"
    XLMRobertaModel(config).save_pretrained(parts)
    tokenizer.save_pretrained(parts)
    return SentenceTransformer(
        modules=[
            modules.Transformer(str(parts), max_seq_length=64),
            modules.Pooling(32, "mean"),
            modules.Normalize(),
        ],
        device="cpu",
    )


def test_xlm_roberta_positions_start_after_padding_idx(tmp_path):
    texts = ["one two three", "four five six seven eight nine ten", "eleven", "twelve thirteen"]
    model = _tiny_xlmr(tmp_path, texts)
    reference = model.encode(texts)
    fast = GPUEncoder(model, dtype=torch.float32, max_tokens=64, window=2, packed=True).encode(texts)
    assert (fast * reference).sum(1).min() > 0.99999


def test_unsupported_pooling_is_refused(default_st):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules

    cls = SentenceTransformer(modules=[default_st[0], modules.Pooling(384, "cls")], device="cpu")
    with pytest.raises(ValueError, match="mean pooling"):
        GPUEncoder(cls, dtype=torch.float32)


def test_tokenizer_errors_reach_the_caller(default_st):
    with pytest.raises(TypeError):
        GPUEncoder(default_st, dtype=torch.float32).encode(["passage: fine", None])  # type: ignore[list-item]


def test_pretokenised_ids_give_the_same_vectors(default_st):
    fast = GPUEncoder(default_st, dtype=torch.float32, max_tokens=600, window=3)
    ids = default_st.tokenizer(SAMPLE, truncation=True, max_length=default_st.max_seq_length)["input_ids"]
    assert np.allclose(fast.encode_ids(ids), fast.encode(SAMPLE), atol=1e-6)
