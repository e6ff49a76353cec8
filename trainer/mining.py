"""Hard-negative mining with BM25 or a dense model, and cross-encoder teacher scores for distillation.

Candidates are the distinct passages of the pairs (plus an optional extra corpus). For each query they are
ranked, the first ``range_min`` ranks are skipped (they hold most unlabelled positives), and with a dense model
candidates scoring within a margin of the positive are dropped (NV-Retriever's TopK-PercPos, as
sentence-transformers' ``mine_hard_negatives`` does it: ``score > pos - |pos| · relative_margin``). Margins are
not applied to BM25 scores, which are not comparable across queries.

Why not ``sentence_transformers.util.mine_hard_negatives`` itself: it has no BM25 backend, and it recognises
positives only through the pairs file; here every passage paired with the query (and any text equal to one)
is excluded, and the invariant "a negative is never a positive" is checked before writing.
"""

from __future__ import annotations

import logging
import random
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

from indexer.encoding.encoder import TextEncoder
from trainer.config import MineConfig
from trainer.data import Pair

logger = logging.getLogger(__name__)

Ranked = list[tuple[int, float]]  # (candidate index, score), best first


def _dense_ranked(
    queries: list[str], corpus: list[str], encoder: TextEncoder, depth: int, show_progress: bool
) -> tuple[list[Ranked], np.ndarray, np.ndarray]:
    qv = encoder.encode_queries(queries)  # (n_queries, dim)
    cv = encoder.encode_passages(corpus, show_progress=show_progress)  # (n_corpus, dim)
    out = []
    for start in range(0, len(qv), 1024):
        scores = qv[start : start + 1024] @ cv.T  # (chunk, n_corpus)
        top = np.argsort(-scores, axis=1, kind="stable")[:, :depth]
        out.extend([[(int(j), float(row[j])) for j in idx] for row, idx in zip(scores, top, strict=True)])
    return out, qv, cv


def _bm25_ranked(queries: list[str], corpus: list[str], depth: int, show_progress: bool) -> list[Ranked]:
    from indexer.ingest.langdetect import detect_languages
    from indexer.retrieval.bm25 import BM25Index

    index = BM25Index.build(
        list(range(len(corpus))), corpus, detect_languages(corpus), show_progress=show_progress
    )
    return [index.search(q, depth) for q in queries]


def _select(
    ranked: Ranked,
    positives: set[int],
    pos_score: float | None,
    config: MineConfig,
    rng: random.Random,
    counts: Counter,
) -> list[int]:
    window: list[int] = []
    rank = 0  # among non-positive candidates, as sentence-transformers counts range_min / range_max
    for cand, score in ranked:
        if cand in positives:
            counts["skipped_positive"] += 1
            continue
        rank += 1
        if rank <= config.range_min:
            continue
        if rank > config.range_max:
            break
        if pos_score is not None:
            if (
                config.relative_margin is not None
                and score > pos_score - abs(pos_score) * config.relative_margin
            ):
                counts["skipped_margin"] += 1
                continue
            if config.absolute_margin is not None and score + config.absolute_margin > pos_score:
                counts["skipped_margin"] += 1
                continue
        window.append(cand)
    if config.sampling == "random" and len(window) > config.num_negatives:
        return rng.sample(window, config.num_negatives)
    return window[: config.num_negatives]


def mine_hard_negatives(
    pairs: Sequence[Pair],
    config: MineConfig = MineConfig(),
    encoder: TextEncoder | None = None,
    extra_corpus: Sequence[str] = (),
    show_progress: bool = False,
) -> tuple[list[Pair], dict]:
    """Pairs with ``negatives`` filled (exactly ``num_negatives`` each); pairs without enough are dropped.

    Returns (pairs, counts). ``encoder`` is required for ``method="dense"``.
    """
    corpus_index: dict[str, int] = {}
    for text in [p.passage for p in pairs] + list(extra_corpus):
        corpus_index.setdefault(text, len(corpus_index))
    corpus = list(corpus_index)
    positives: dict[str, set[int]] = defaultdict(set)
    for p in pairs:
        positives[p.query].add(corpus_index[p.passage])
        if p.query in corpus_index:  # a candidate equal to the query is no negative either
            positives[p.query].add(corpus_index[p.query])
    queries = list(positives)
    depth = config.range_max + max(len(s) for s in positives.values())
    pos_scores: dict[tuple[str, str], float] = {}
    if config.method == "dense":
        if encoder is None:
            raise ValueError("method='dense' needs an encoder")
        ranked, qv, cv = _dense_ranked(queries, corpus, encoder, depth, show_progress)
        q_row = {q: i for i, q in enumerate(queries)}
        pos_scores = {
            (p.query, p.passage): float(qv[q_row[p.query]] @ cv[corpus_index[p.passage]]) for p in pairs
        }
    else:
        ranked = _bm25_ranked(queries, corpus, depth, show_progress)
    by_query = dict(zip(queries, ranked, strict=True))
    rng = random.Random(config.seed)
    counts: Counter[str] = Counter(pairs=len(pairs))
    out = []
    for p in pairs:
        pos = pos_scores.get((p.query, p.passage)) if config.method == "dense" else None
        chosen = _select(by_query[p.query], positives[p.query], pos, config, rng, counts)
        if len(chosen) < config.num_negatives:
            counts["dropped_not_enough_negatives"] += 1
            continue
        assert not set(chosen) & positives[p.query], "a positive was selected as a negative"
        out.append(
            Pair(p.query, p.passage, tuple(corpus[c] for c in chosen), (), p.task, p.lang, p.source, p.id)
        )
    counts["mined"] = len(out)
    logger.info("mining (%s): %s", config.method, dict(counts))
    return out, dict(counts)


def add_teacher_scores(
    pairs: Sequence[Pair], teacher: str, batch_size: int = 32, show_progress: bool = False
) -> list[Pair]:
    """Score (query, passage) and (query, negative_i) with a CrossEncoder: ``teacher_scores``, positive first."""
    from tqdm.auto import tqdm

    from indexer.retrieval.rerank import Reranker

    ce = Reranker(teacher, batch_size=batch_size)
    out = []
    for p in tqdm(pairs, desc="teacher", unit="pair", disable=not show_progress):
        scores = ce.score(p.query, [p.passage, *p.negatives])  # (1 + n_neg,)
        out.append(
            Pair(
                p.query,
                p.passage,
                p.negatives,
                tuple(float(s) for s in scores),
                p.task,
                p.lang,
                p.source,
                p.id,
            )
        )
    return out
