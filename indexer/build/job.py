"""The indexing job: scan a folder, read and chunk what changed, encode, and switch to the new index atomically.

Flow: scan → read + chunk (changed files only) → detect languages → encode (through the embedding cache, a group
of chunks at a time as files are read; with a GPU encoder reading runs on a thread beside it, :mod:`indexer.build.pipeline`) →
one SQLite transaction that rewrites the changed documents, writes the next generation of FAISS and BM25 files
and bumps the generation in the manifest. See :mod:`indexer.storage.layout` for why that is crash-safe.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from indexer.build.pipeline import CachedEncoding, read_ahead
from indexer.build.scan import _check_compatible, _in_scope, _Prepared, _resolve_root, _Scan, _scan
from indexer.build.write import _write
from indexer.config import IndexConfig
from indexer.encoding.encoder import TextEncoder, encoder_for_index
from indexer.errors import ConfigError
from indexer.storage.embcache import EmbeddingCache
from indexer.storage.layout import Layout
from indexer.storage.store import ChunkRow, FileRow, open_engine, read_manifest
from indexer.types import Progress

logger = logging.getLogger(__name__)


READ_AHEAD_FILES = 256  # files read and chunked ahead of the encoder


ENCODE_GROUP_BATCHES = (
    8  # model batches per encoder call: fewer calls, and each group is committed to the cache
)


@dataclass
class IndexSummary:
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    chunks: int = 0  # chunks in the index after the run
    chunks_encoded: int = 0  # chunks that went through the model in this run (cache misses)
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "chunks": self.chunks,
            "chunks_encoded": self.chunks_encoded,
            "seconds": round(self.seconds, 3),
        }


def _read_and_encode(
    scan: Iterator[tuple[int, int, _Prepared | None]],
    encoding: CachedEncoding,
    overlap: bool,
    progress: Progress | None,
) -> list[_Prepared]:
    """Files read (on the read-ahead thread if ``overlap``), their chunks encoded here as groups fill up.

    Overlap pays only where the encoder leaves the CPU free (a GPU; bench/index.py --off-cpu shows it): on CPU the
    int8 and torch backends already keep every core busy, and a reader thread beside them made indexing ~5 %
    slower (2 cores, 3 paired rounds of 120 SciFact documents).
    """
    prepared = []
    for done, total, prep in read_ahead(scan, depth=READ_AHEAD_FILES) if overlap else scan:
        if prep is not None:
            prepared.append(prep)
            encoding.add([t for _, _, _, texts in prep.docs for t in texts])
        if progress:
            progress("reading", done, total)
    return prepared


def build_index(
    source: str | Path,
    index_dir: str | Path,
    config: IndexConfig = IndexConfig(),
    encoder: TextEncoder | None = None,
    show_progress: bool = False,
    progress: Progress | None = None,
) -> IndexSummary:
    """Index ``source`` (a folder or one file) into ``index_dir``, incrementally.

    Only files whose content hash changed are read again; files gone from ``source`` are removed from SQLite,
    FAISS and BM25 alike. A crash or Ctrl-C at any point leaves the previous index whole and searchable.

    >>> summary = build_index("data/sample", ".e5search/sample")   # doctest: +SKIP
    >>> summary.to_json()["added"]                                  # doctest: +SKIP
    """
    t0 = time.perf_counter()
    source, index_dir = Path(source).expanduser().resolve(), Path(index_dir).expanduser()
    if index_dir.exists() and not index_dir.is_dir():
        raise ConfigError(f"--index {index_dir} is a file; give a folder for the index")
    index_dir.mkdir(parents=True, exist_ok=True)
    layout = Layout(index_dir)
    engine = open_engine(index_dir, create=True)
    summary = IndexSummary()
    try:
        with Session(engine) as session:
            manifest = read_manifest(session)
            known = {f.path: f for f in session.scalars(select(FileRow))}
            session.expunge_all()
        root = _resolve_root(source, manifest)
        if encoder is None:
            encoder = encoder_for_index(manifest, config.model)  # auto follows the index
        _check_compatible(manifest, encoder, config)
        layout.remove_other_generations(keep=manifest.get("generation", 0))

        # keyed by the exact numerics (an int8 artefact's format too), so a run never resumes from vectors an
        # older build of the same backend made
        cache = EmbeddingCache(layout.cache_db, encoder.cache_key, encoder.dim)
        try:
            found = _Scan()
            batch = config.model.batch_size
            encoding = CachedEncoding(
                encoder, cache, ENCODE_GROUP_BATCHES * batch, show_progress, first_group=batch
            )
            scan = _scan(source, root, known, encoder, config, found, show_progress)
            prepared = _read_and_encode(scan, encoding, encoder.on_gpu, progress)
            vectors = encoding.finish(progress)
            summary.chunks_encoded = encoding.encoded
            scope = "" if source == root else source.relative_to(root).as_posix()
            removed = [p for p in known if _in_scope(p, scope, source.is_file()) and p not in found.seen]
            summary.added = sum(1 for p in prepared if p.is_new and not p.reason)
            summary.updated = sum(1 for p in prepared if not p.is_new and not p.reason)
            summary.removed, summary.unchanged = len(removed), found.unchanged
            summary.skipped += found.skipped + [
                {"path": p.rel, "reason": p.reason} for p in prepared if p.reason
            ]
            with Session(engine) as session, session.begin():
                for rel, mtime in found.touched.items():
                    session.query(FileRow).filter(FileRow.path == rel).update({"mtime": mtime})
                if prepared or removed or not manifest.get("generation"):
                    gen = _write(
                        session,
                        layout,
                        manifest,
                        prepared,
                        removed,
                        vectors,
                        encoder,
                        config,
                        root,
                        show_progress,
                        progress,
                    )
                else:
                    gen = manifest["generation"]
                summary.chunks = session.query(ChunkRow).count()
            layout.remove_other_generations(keep=gen)
            with Session(engine) as session:
                cache.prune(session.scalars(select(ChunkRow.text_hash)).all())
        finally:
            cache.close()
    finally:
        engine.dispose()
    summary.seconds = time.perf_counter() - t0
    logger.info("indexed %s: %s", source, summary.to_json())
    return summary
