"""Token counting and token ids exactly as the encoder's tokenizer makes them.

Chunking counts tokens to fit a chunk into the model's window; the lean backends need each text's ids without
the padding. Both live here, below ingest/ and encoding/, so neither has to import the other.
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
