"""Semantic textual similarity: Spearman correlation between cosine similarity and human scores, per language, on
STSb-multi-MT (May 2021: the STS benchmark machine-translated by DeepL into 10 languages, plus the English).

Spearman ×100 of cosine similarity is the MTEB / sentence-transformers convention. Both sentences are encoded with
the query prompt, as E5 does for symmetric tasks.

A reduced run (``max_pairs``) takes a seeded random sample of each file's pairs, never the first N: the files are
ordered by genre, and their first pairs (image captions) are the easiest. Spearman on the first 300 vs all 1,379
pairs (fp32): English 91.9 vs 84.0, German 86.3 vs 78.9, Chinese 88.3 vs 78.2 (issue 14).
"""

from __future__ import annotations

import csv
import gzip
import logging
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import stats

from eval.bitext import Prompt, encode
from indexer.encoding.encoder import TextEncoder
from indexer.errors import E5SearchError

logger = logging.getLogger(__name__)

Pair = tuple[str, str, float]


def stsb_languages(root: str | Path, split: str = "test") -> list[str]:
    return sorted(p.name.split("-")[1] for p in (Path(root) / "data").glob(f"stsb-*-{split}.csv*"))


def load_stsb(root: str | Path, lang: str, split: str = "test") -> list[Pair]:
    """``(sentence1, sentence2, score in [0, 5])`` rows of ``data/stsb-{lang}-{split}.csv[.gz]``."""
    folder = Path(root) / "data"
    path = next(
        (
            p
            for p in (folder / f"stsb-{lang}-{split}.csv.gz", folder / f"stsb-{lang}-{split}.csv")
            if p.is_file()
        ),
        None,
    )
    if path is None:
        raise E5SearchError(
            f"STSb-multi-MT has no {lang!r}/{split!r} under {folder}; "
            f"languages: {', '.join(stsb_languages(root, split))}"
        )
    opener = gzip.open if path.suffix == ".gz" else open
    pairs: list[Pair] = []
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        for lineno, row in enumerate(csv.reader(f), start=1):
            try:
                pairs.append((row[0], row[1], float(row[2])))
            except (IndexError, ValueError):
                raise E5SearchError(
                    f"{path}:{lineno}: expected sentence1,sentence2,score; got {row!r}"
                ) from None
    return pairs


def sample_pairs(pairs: Sequence[Pair], n: int | None, seed: int = 0) -> list[Pair]:
    """``n`` pairs drawn at random with ``seed`` (file order kept), or all of them when ``n`` is None or larger.

    >>> sample_pairs([("a", "b", 1.0), ("c", "d", 2.0), ("e", "f", 3.0)], 2, seed=0)
    [('c', 'd', 2.0), ('e', 'f', 3.0)]
    """
    if n is None or n >= len(pairs):
        return list(pairs)
    keep = sorted(random.Random(seed).sample(range(len(pairs)), n))
    return [pairs[i] for i in keep]


def sts_spearman(encoder: TextEncoder, pairs: Sequence[Pair], prompt: Prompt = "query") -> float:
    """Spearman ×100 between the cosine of each pair's embeddings and its gold score."""
    if len(pairs) < 2:
        raise ValueError(f"Spearman needs at least 2 pairs, got {len(pairs)}")
    unique = list(dict.fromkeys(s for a, b, _ in pairs for s in (a, b)))  # encode each sentence once
    emb = encode(encoder, unique, prompt)  # (n_unique, dim), L2-normalised
    row = {s: i for i, s in enumerate(unique)}
    a = emb[[row[p[0]] for p in pairs]]  # (n_pairs, dim)
    b = emb[[row[p[1]] for p in pairs]]
    cos = np.sum(a * b, axis=1)  # (n_pairs,)
    gold = np.array([p[2] for p in pairs])
    return float(100 * stats.spearmanr(cos, gold).statistic)


def sts_benchmark(
    encoder: TextEncoder,
    root: str | Path,
    languages: Sequence[str] | None = None,
    split: str = "test",
    max_pairs: int | None = None,
    prompt: Prompt = "query",
    seed: int = 0,
) -> dict[str, dict]:
    """``{lang: {"spearman", "n"}}`` for each language (all of them by default); ``max_pairs``: a seeded random
    sample of that many pairs per language (:func:`sample_pairs`)."""
    out: dict[str, dict] = {}
    for lang in languages or stsb_languages(root, split):
        pairs = sample_pairs(load_stsb(root, lang, split), max_pairs, seed)
        out[lang] = {"spearman": sts_spearman(encoder, pairs, prompt), "n": len(pairs)}
        logger.info("sts %s: %.2f", lang, out[lang]["spearman"])
    return out
