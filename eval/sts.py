"""Semantic textual similarity: Spearman correlation between cosine similarity and human scores, per language, on
STSb-multi-MT (May 2021: the STS benchmark machine-translated by DeepL into 10 languages, plus the English).

Spearman ×100 of cosine similarity is the MTEB / sentence-transformers convention. Both sentences are encoded with
the query prompt, as E5 does for symmetric tasks.
"""

from __future__ import annotations

import csv
import gzip
import logging
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
) -> dict[str, dict]:
    """``{lang: {"spearman", "n"}}`` for each language (all of them by default)."""
    out: dict[str, dict] = {}
    for lang in languages or stsb_languages(root, split):
        pairs = load_stsb(root, lang, split)[:max_pairs]
        out[lang] = {"spearman": sts_spearman(encoder, pairs, prompt), "n": len(pairs)}
        logger.info("sts %s: %.2f", lang, out[lang]["spearman"])
    return out
