"""Plain data types shared by the indexer, the eval and the app.

BEIR-style aliases (``Corpus``, ``Queries``, ``Qrels``, ``Run``) are plain dicts so that any retriever and any
metric can exchange results without adapters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

# BEIR formats: corpus[doc_id] = {"title": ..., "text": ...}; queries[qid] = text;
# qrels[qid][doc_id] = relevance; run[qid][doc_id] = score.
Corpus = dict[str, dict[str, str]]


Queries = dict[str, str]


Qrels = dict[str, dict[str, int]]


Run = dict[str, dict[str, float]]


SearchMode = Literal["dense", "bm25", "hybrid"]


@dataclass(frozen=True)
class Section:
    """A run of text under one heading path inside a document."""

    text: str
    heading_path: tuple[str, ...] = ()
    start: int = 0  # character offset of ``text`` in the document's full text


@dataclass(frozen=True)
class Document:
    """One document read from disk. A BEIR ``corpus.jsonl`` yields one Document per line."""

    path: str  # unique key in the index: file path, or "file.jsonl#doc_id" for records inside a file
    title: str
    sections: tuple[Section, ...]
    file_type: str  # "txt", "md", "pdf", ...
    external_id: str | None = None  # the record's own id (BEIR ``_id``) when it has one

    @property
    def text(self) -> str:
        return "\n\n".join(s.text for s in self.sections)


@dataclass(frozen=True)
class ChunkDraft:
    """A chunk before it has an id: produced by :mod:`indexer.ingest.chunking`."""

    text: str
    heading_path: tuple[str, ...]
    start: int  # character offsets into the document's full text
    end: int
    n_tokens: int


@dataclass(frozen=True)
class Hit:
    """One search result. ``chunk_id`` is also the chunk's FAISS id.

    ``page`` is the page (PDF) or slide (PPTX) the chunk is on, read from the first heading of its heading path
    (``("p. 3",)``, ``("slide 3", "Title")``) by :func:`indexer.storage.catalog.page_of`; None for unpaged sources.
    """

    rank: int
    score: float
    chunk_id: int
    doc_path: str
    title: str
    text: str
    lang: str
    heading_path: tuple[str, ...] = ()
    doc_id: str | None = None  # external id (BEIR ``_id``) when the document has one
    prev_rank: int | None = None  # rank before reranking, when reranked
    page: int | None = None  # page or slide number, from heading_path[0], when the source is paged

    @property
    def page_label(self) -> str:
        """``"p. 3"`` / ``"slide 3"``: the heading the page was read from; ``""`` when there is no page."""
        return self.heading_path[0] if self.page is not None and self.heading_path else ""

    @property
    def section_path(self) -> tuple[str, ...]:
        """The heading path without its page heading (the page is shown on its own)."""
        return self.heading_path[1:] if self.page_label else self.heading_path

    def to_json(self) -> dict:
        return {
            "rank": self.rank,
            "score": self.score,
            "doc_path": self.doc_path,
            "chunk_id": self.chunk_id,
            "title": self.title,
            "text": self.text,
            "lang": self.lang,
            "heading_path": list(self.heading_path),
            "page": self.page,
            "doc_id": self.doc_id,
            "prev_rank": self.prev_rank,
        }


@dataclass(frozen=True)
class FusionWeights:
    """How hybrid search weighed its two lists for one query: each list's share, ``bm25 + dense == 1``.

    ``method`` is ``"weighted"`` (shares predicted for this query) or ``"rrf"`` (plain RRF: 0.5 each).
    """

    method: str
    bm25: float
    dense: float

    def to_json(self) -> dict:
        return {"method": self.method, "bm25": round(self.bm25, 4), "dense": round(self.dense, 4)}


@dataclass
class SearchResult:
    query: str
    mode: SearchMode
    reranked: bool
    hits: list[Hit]
    timings_ms: dict[str, float] = field(default_factory=dict)
    fusion: FusionWeights | None = None  # hybrid only: the weights its fusion used for this query

    def to_json(self) -> dict:
        return {
            "query": self.query,
            "mode": self.mode,
            "reranked": self.reranked,
            "fusion": self.fusion.to_json() if self.fusion else None,
            "hits": [h.to_json() for h in self.hits],
            "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
        }


Progress = Callable[[str, int, int], None]  # (stage, done, total)


Ranked = list[tuple[int, float]]  # (chunk id, score), best first
