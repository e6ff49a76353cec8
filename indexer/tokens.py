"""The one place that applies E5 prompts, pooling and normalisation.

Call sites ask for ``encode_queries`` or ``encode_passages``; they never paste ``query: `` / ``passage: ``
themselves. Prompts come from the model folder (``config_sentence_transformers.json``), falling back to the
``ModelConfig`` defaults (E5's prompts) when the folder records none.

The model always loads through sentence-transformers (tokenizer, prompts, pooling, fingerprint); how its
transformer runs is the backend's business (:mod:`indexer.backends`): by default int8 ONNX Runtime on CPU,
fp32 torch otherwise. The backend is part of :meth:`Encoder.describe` and, when its vectors differ from fp32
beyond tolerance, of the fingerprint.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def count_tokens(tokenizer, texts: Sequence[str]) -> list[int]:
    """Number of tokens of each text without special tokens."""
    if not texts:
        return []
    enc = tokenizer(list(texts), add_special_tokens=False, return_attention_mask=False, verbose=False)
    return [len(ids) for ids in enc["input_ids"]]


_PREPROCESS_GROUP = 64  # texts tokenised per sentence-transformers preprocess call


def token_ids(st_model, texts: Sequence[str]) -> list[np.ndarray]:
    """Each text's token ids exactly as sentence-transformers prepares them (its own preprocess: truncation,
    special tokens, lower-casing), without the padding. Texts are grouped by length so padding stays small."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: list[np.ndarray] = [np.zeros(0, np.int64)] * len(texts)
    for start in range(0, len(order), _PREPROCESS_GROUP):
        idx = order[start : start + _PREPROCESS_GROUP]
        features = st_model.preprocess([texts[i] for i in idx])
        ids = features["input_ids"].numpy().astype(np.int64)  # (group, longest)
        mask = features["attention_mask"].numpy().astype(bool)  # (group, longest)
        for row, i in enumerate(idx):
            out[i] = ids[row][mask[row]]
    return out
