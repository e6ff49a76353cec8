"""Bitext mining on NTREX-128 (Federmann et al. 2022): find each sentence's translation among all sentences of the
other language, by cosine nearest neighbour, against English in both directions.

NTREX-128 holds the same 1,997 English news sentences (WMT19) translated into 128 languages, line-aligned, so line
``i`` in one file translates line ``i`` in another. Accuracy is the share of sentences whose nearest neighbour is
their translation (as in Tatoeba / BUCC-style "xsim" without the margin). A neighbour with exactly the same text
as the gold one counts as correct: a few headlines repeat.

Both sides are encoded with the query prompt: E5 uses ``query: `` on both sides of symmetric tasks (Wang et al.
2024, multilingual E5 report, §3).
"""

from __future__ import annotations

import gzip
import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from indexer.encoding.encoder import TextEncoder
from indexer.errors import E5SearchError

logger = logging.getLogger(__name__)

Prompt = Literal["query", "passage"]
ENGLISH = "eng"
# 24 languages, 13 scripts: Latin, Cyrillic, Greek, Arabic, Hebrew, Devanagari, Bengali, Tamil, Thai, Georgian,
# Ethiopic, Han, Kana, Hangul. Chosen for breadth of script and family, not for good scores.
DEFAULT_LANGUAGES: tuple[str, ...] = (
    "deu", "fra", "spa", "pol", "ces", "tur", "vie", "ind", "swa", "fin",
    "rus", "ukr", "bul", "ell", "arb", "heb", "fas", "hin", "ben", "tam", "tha", "kat", "amh",
    "jpn", "kor", "zho-CN",
)  # fmt: skip


def read_languages(root: Path) -> dict[str, str]:
    """NTREX code → language name, from ``LANGUAGES.tsv`` (columns separated by tabs or runs of spaces)."""
    names: dict[str, str] = {}
    for line in (Path(root) / "LANGUAGES.tsv").read_text(encoding="utf-8").splitlines():
        parts = line.strip().split(maxsplit=1)
        if len(parts) == 2:
            names[parts[0]] = parts[1].strip()
    return names


def sentence_file(root: Path, code: str) -> Path:
    folder = Path(root) / "NTREX-128"
    name = "newstest2019-src.eng.txt.gz" if code == ENGLISH else f"newstest2019-ref.{code}.txt.gz"
    path = folder / name
    if not path.is_file():
        have = sorted(p.name.split(".")[1] for p in folder.glob("newstest2019-ref.*.txt.gz"))
        raise E5SearchError(f"NTREX-128 has no language {code!r} under {folder}; codes: {', '.join(have)}")
    return path


def read_sentences(root: Path, code: str) -> list[str]:
    with gzip.open(sentence_file(root, code), "rt", encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def sample_lines(n_lines: int, limit: int | None, seed: int = 0) -> list[int]:
    """Line numbers of a seeded random sample of ``limit`` lines (all when None or larger), ascending: the same
    lines of every aligned file. Never the first N: those are a few news stories, not the whole set."""
    if limit is None or limit >= n_lines:
        return list(range(n_lines))
    return sorted(random.Random(seed).sample(range(n_lines), limit))


def encode(encoder: TextEncoder, texts: Sequence[str], prompt: Prompt = "query") -> np.ndarray:
    if prompt == "query":
        return encoder.encode_queries(list(texts))  # (n, dim), L2-normalised
    return encoder.encode_passages(list(texts))


def mining_accuracy(src: np.ndarray, tgt: np.ndarray, tgt_texts: Sequence[str] | None = None) -> float:
    """Share of rows ``i`` of ``src`` whose most similar row of ``tgt`` is row ``i`` (or has row ``i``'s text).

    >>> e = np.eye(3, dtype=np.float32)
    >>> mining_accuracy(e, e[[0, 2, 1]])
    0.3333333333333333
    """
    if src.shape != tgt.shape:
        raise ValueError(f"aligned sets need equal shapes, got {src.shape} and {tgt.shape}")
    if len(src) == 0:
        return 0.0
    best = np.argmax(src @ tgt.T, axis=1)  # (n,) row of tgt nearest each src row; ties → lowest index
    gold = np.arange(len(src))
    hit = best == gold
    if tgt_texts is not None:
        hit |= np.array([tgt_texts[int(b)] == tgt_texts[int(g)] for b, g in zip(best, gold, strict=True)])
    return float(hit.mean())


def bitext_mining(
    encoder: TextEncoder,
    root: str | Path,
    languages: Sequence[str] = DEFAULT_LANGUAGES,
    max_sentences: int | None = None,
    prompt: Prompt = "query",
    seed: int = 0,
) -> dict[str, dict]:
    """Accuracy per language, both directions against English; ``max_sentences``: a seeded random sample of
    that many aligned lines (:func:`sample_lines`).

    Returns ``{code: {"name", "xx->en", "en->xx", "mean", "n"}}``.
    """
    root = Path(root)
    names = read_languages(root)
    all_english = read_sentences(root, ENGLISH)
    keep = sample_lines(len(all_english), max_sentences, seed)
    english = [all_english[i] for i in keep]
    en = encode(encoder, english, prompt)  # (n, dim)
    out: dict[str, dict] = {}
    for code in languages:
        all_texts = read_sentences(root, code)
        if len(all_texts) != len(all_english):
            raise E5SearchError(
                f"NTREX-128 {code}: {len(all_texts)} lines, English has {len(all_english)}; not aligned"
            )
        texts = [all_texts[i] for i in keep]
        xx = encode(encoder, texts, prompt)
        to_en, from_en = mining_accuracy(xx, en, english), mining_accuracy(en, xx, texts)
        out[code] = {
            "name": names.get(code, code),
            "xx->en": to_en,
            "en->xx": from_en,
            "mean": (to_en + from_en) / 2,
            "n": len(texts),
        }
        logger.info("bitext %s: %.3f / %.3f", code, to_en, from_en)
    return out
