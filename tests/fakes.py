"""A deterministic fake encoder for unit tests: hashed bag of words, so rankings can be asserted exactly.

It has a real (tiny) fast tokenizer built with the ``tokenizers`` library, so chunking code paths run as with the
real model. Words that share no token share no similarity; that is the point: tests can predict every score.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast


def make_tokenizer(max_length: int = 128) -> PreTrainedTokenizerFast:
    tok = Tokenizer(
        models.WordLevel(vocab={"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "[PAD]": 3}, unk_token="[UNK]")
    )
    tok.normalizer = normalizers.BertNormalizer(
        handle_chinese_chars=True, lowercase=True, strip_accents=False
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]"
    )
    fast.model_max_length = max_length
    return fast


class FakeEncoder:
    """Implements :class:`indexer.encoding.encoder.TextEncoder` without a neural network."""

    query_prompt = "query: "
    passage_prompt = "passage: "
    on_gpu = False

    def __init__(self, dim: int = 64, max_length: int = 128, name: str = "fake-hash-encoder"):
        self.dim = dim
        self.max_length = max_length
        self.name = name
        self.fingerprint = f"fake-{dim}-{max_length}"
        self.model_fingerprint = self.fingerprint
        self.cache_key = self.fingerprint
        self._tokenizer = make_tokenizer(max_length)
        self.calls: list[int] = []  # batch sizes seen by encode_passages, for cache tests

    @property
    def tokenizer(self) -> PreTrainedTokenizerFast:
        return self._tokenizer

    def _words(self, text: str) -> list[str]:
        norm = self._tokenizer.backend_tokenizer.normalizer.normalize_str(text)
        return [
            w
            for w, _ in self._tokenizer.backend_tokenizer.pre_tokenizer.pre_tokenize_str(norm)
            if w.isalnum()
        ]

    def _embed(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for w in self._words(text):
            h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little")
            v[h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
        n = np.linalg.norm(v)
        if n == 0:
            v[0] = 1.0
            n = 1.0
        return v / n

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._embed(t) for t in texts]).astype(np.float32)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def encode_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        self.calls.append(len(texts))
        return self._encode(texts)

    def describe(self) -> dict:
        return {
            "model": self.name,
            "fingerprint": self.fingerprint,
            "dim": self.dim,
            "max_length": self.max_length,
            "query_prompt": self.query_prompt,
            "passage_prompt": self.passage_prompt,
        }
