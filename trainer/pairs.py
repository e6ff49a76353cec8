"""Weakly-supervised (query, passage) pairs, built the way E5's CCPairs were (title → passage, short → long), and
heuristic cleaning with counts of what was dropped and why.

Sources: an e5search index (document title / heading path → chunk: the user's own folder), a JSONL file with
any two text fields, BEIR train qrels (query → relevant document), a BEIR corpus alone (title → abstract: no
queries, no labels), Debian DDTP package descriptions (short → long, in ~20 languages) and NTREX-128
translation pairs (sentence → its translation). Builders yield :class:`trainer.data.Pair`; nothing is prefixed.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from indexer.errors import ConfigError
from indexer.ingest.beir import jsonl_records, load_corpus, load_qrels, load_queries, open_text
from indexer.ingest.chunking import passage_text
from indexer.types import Corpus, Qrels, Queries
from trainer.config import CleanConfig
from trainer.data import Pair, iter_pairs

logger = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------------ readers
def read_beir(folder: str | Path, split: str | None) -> tuple[Corpus, Queries, Qrels]:
    """A BEIR folder's corpus, queries and (when ``split`` is given) qrels, read by :mod:`indexer.ingest.beir`."""
    corpus = load_corpus(folder)
    if split is None:
        return corpus, {}, {}
    return corpus, load_queries(folder), load_qrels(folder, split)


def doc_text(doc: dict[str, str]) -> str:
    """A BEIR document as the indexer embeds it (title header, then the text)."""
    return passage_text(doc.get("title", ""), (), doc.get("text", ""))


# ----------------------------------------------------------------------------------------------- builders
def from_beir_qrels(folder: str | Path, split: str = "train", min_score: int = 1) -> Iterator[Pair]:
    """Query → each document judged relevant (score >= ``min_score``) in ``split``."""
    corpus, queries, qrels = read_beir(folder, split)
    name = Path(folder).name
    for qid in sorted(qrels):
        for did, score in sorted(qrels[qid].items()):
            if score >= min_score and qid in queries and did in corpus:
                yield Pair(
                    queries[qid], doc_text(corpus[did]), source=f"beir:{name}:{split}", id=f"{qid}:{did}"
                )


def from_beir_corpus(folder: str | Path) -> Iterator[Pair]:
    """Self-supervised: each document's title → its text. No queries and no labels are read."""
    corpus, _, _ = read_beir(folder, None)
    name = Path(folder).name
    for did, doc in corpus.items():
        if doc["title"].strip() and doc["text"].strip():
            yield Pair(doc["title"], doc["text"], source=f"beir-corpus:{name}", id=did)


def from_jsonl(
    path: str | Path, query_field: str = "query", passage_field: str = "passage"
) -> Iterator[Pair]:
    """Any JSONL with two text fields; a file already in the pairs format is read as is."""
    path = Path(path)
    if (query_field, passage_field) == ("query", "passage"):
        yield from iter_pairs(path)
        return
    for lineno, record in jsonl_records(path, require_id=False):
        q, p = record.get(query_field), record.get(passage_field)
        if not isinstance(q, str) or not isinstance(p, str):
            raise ConfigError(f"{path}:{lineno}: needs string fields {query_field!r} and {passage_field!r}")
        yield Pair(q, p, source=f"jsonl:{path.name}")


def from_ddtp(folder: str | Path, languages: Sequence[str] = ()) -> Iterator[Pair]:
    """Debian package descriptions: short description → long description, per language file."""
    folder = Path(folder)
    files = sorted(folder.glob("descriptions.*.jsonl.gz"))
    if not files:
        raise ConfigError(f"{folder}: no descriptions.LANG.jsonl.gz files; give the debian-ddtp folder")
    for path in files:
        lang = path.name.split(".")[1]
        if languages and lang not in languages:
            continue
        for _, r in jsonl_records(path, require_id=False):
            yield Pair(
                r["short"], r["long"], lang=lang.split("_")[0], source=f"ddtp:{lang}", id=r.get("package")
            )


def from_ntrex(
    folder: str | Path, source_lang: str = "eng", target_langs: Sequence[str] = ()
) -> Iterator[Pair]:
    """NTREX-128 translation pairs: the ``source_lang`` sentence → the same sentence in each target language."""
    root = Path(folder) / "NTREX-128"

    def sentences(code: str) -> list[str]:
        path = root / f"newstest2019-ref.{code}.txt.gz"
        if not path.is_file():
            path = root / f"newstest2019-src.{code}.txt.gz"  # English is the source side
        if not path.is_file():
            raise ConfigError(f"{path} does not exist; language codes are as in {folder}/LANGUAGES.tsv")
        with open_text(path) as f:
            return [line.rstrip("\n") for line in f]

    src = sentences(source_lang)
    for code in target_langs:
        for i, (s, t) in enumerate(zip(src, sentences(code), strict=True)):
            yield Pair(s, t, source=f"ntrex:{source_lang}-{code}", id=str(i))


def from_index(index_dir: str | Path) -> Iterator[Pair]:
    """An e5search index: document title and heading path → chunk text, from the index's SQLite store."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from indexer.storage.layout import Layout
    from indexer.storage.store import ChunkRow, DocumentRow, open_engine

    index_dir = Path(index_dir).expanduser()
    if not Layout(index_dir).exists():
        raise ConfigError(f"no index at {index_dir}: run `e5search index FOLDER --index {index_dir}` first")
    engine = open_engine(index_dir)
    try:
        with Session(engine) as session:
            rows = session.execute(
                select(
                    DocumentRow.title,
                    ChunkRow.heading_path,
                    ChunkRow.text,
                    ChunkRow.lang,
                    DocumentRow.path,
                    ChunkRow.ordinal,
                )
                .join(DocumentRow)
                .order_by(ChunkRow.id)
            ).all()
    finally:
        engine.dispose()
    for title, headings, text, lang, path, ordinal in rows:
        query = " > ".join([title, *json.loads(headings)]).strip(" >")
        yield Pair(query, text, lang=lang, source=f"index:{index_dir.name}", id=f"{path}#{ordinal}")


# ----------------------------------------------------------------------------------------------- cleaning
_SPACE = re.compile(r"\s+")


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text).strip().casefold()


def clean_pairs(
    pairs: Iterable[Pair], config: CleanConfig = CleanConfig()
) -> tuple[list[Pair], dict[str, int]]:
    """Whitespace-normalise texts and drop pairs that fail the heuristics. Returns (kept, counts by reason)."""
    from indexer.ingest.langdetect import detect_language

    counts: Counter[str] = Counter()
    seen: set[tuple[str, str]] = set()
    kept: list[Pair] = []
    for pair in pairs:
        counts["read"] += 1
        q, p = _SPACE.sub(" ", pair.query).strip(), pair.passage.strip()
        reason = None
        if not config.min_query_chars <= len(q) <= config.max_query_chars:
            reason = "query_length"
        elif not config.min_passage_chars <= len(p) <= config.max_passage_chars:
            reason = "passage_length"
        elif config.drop_identical and _norm(q) == _norm(p):
            reason = "identical"
        elif config.dedup and (_norm(q), _norm(p)) in seen:
            reason = "duplicate"
        elif config.languages and (pair.lang or detect_language(p)) not in config.languages:
            reason = "language"
        if reason:
            counts[f"dropped_{reason}"] += 1
            continue
        seen.add((_norm(q), _norm(p)))
        kept.append(
            Pair(q, p, pair.negatives, pair.teacher_scores, pair.task, pair.lang, pair.source, pair.id)
        )
    if config.max_pairs is not None and len(kept) > config.max_pairs:
        counts["dropped_sampled_out"] = len(kept) - config.max_pairs
        keep = set(random.Random(config.seed).sample(range(len(kept)), config.max_pairs))
        kept = [p for i, p in enumerate(kept) if i in keep]
    counts["kept"] = len(kept)
    logger.info("cleaning: %s", dict(counts))
    return kept, dict(counts)
