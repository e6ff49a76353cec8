"""The indexing job: scan a folder, read and chunk what changed, encode, and switch to the new index atomically.

Flow: scan → read + chunk (changed files only) → detect languages → encode (through the embedding cache, a group
of chunks at a time as files are read; with a GPU encoder reading runs on a thread beside it, :mod:`indexer.build.pipeline`) →
one transaction that rewrites the changed documents and their vectors and bumps the generation in the manifest.
In a folder index that transaction is SQLite's and the vectors and BM25 go to the next generation's files
(:mod:`indexer.storage.layout` says why that is crash-safe); in a PostgreSQL index the vectors are rows of the
same transaction (:mod:`indexer.storage.pg`). Either store is an :func:`indexer.storage.stores.open_store`.
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
from indexer.build.write import _write, all_passages
from indexer.config import IndexConfig
from indexer.encoding.encoder import TextEncoder, encoder_for_index
from indexer.errors import ConfigError, IndexingInterrupted
from indexer.ingest.loaders import relative_path
from indexer.storage.embcache import EmbeddingCache
from indexer.storage.layout import Layout
from indexer.storage.lock import LOCK_NAME
from indexer.storage.store import ChunkRow, FileRow, read_manifest
from indexer.storage.stores import FolderStore, Store, open_store
from indexer.types import Progress

logger = logging.getLogger(__name__)


READ_AHEAD_FILES = 256  # files read and chunked ahead of the encoder
ENCODE_GROUP_BATCHES = (
    8  # model batches per encoder call: fewer calls, and each group is committed to the cache
)
# On CPU nothing reads beside the encoder, so starting early buys nothing: groups of 16 batches are taken longest
# first from a pool of 4 groups' texts. Padding on 400 SciFact abstracts (819 chunks, 160,834 tokens): 13.1 % of
# the tokens with groups of 1 to 8 batches in reading order, 8.1 % with 8-batch groups from the pool, 5.0 % with
# 16 (one length-sorted call: 4.1 %, but nothing committed to the cache until the end)
CPU_GROUP_BATCHES = 16
CPU_POOL_GROUPS = 4


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
    index_dir: str | Path | Store,
    config: IndexConfig = IndexConfig(),
    encoder: TextEncoder | None = None,
    show_progress: bool = False,
    progress: Progress | None = None,
    wait: bool = False,
    repair: bool = False,
    rechunk: bool = False,
) -> IndexSummary:
    """Index ``source`` (a folder or one file) into ``index_dir`` (a folder, or a PostgreSQL URL), incrementally.

    Only files whose content hash changed are read again; files gone from ``source`` are removed from SQLite,
    FAISS and BM25 alike. A crash or Ctrl-C at any point leaves the previous index whole and searchable (Ctrl-C
    raises :class:`IndexingInterrupted`, which says whether the new generation was already committed). One
    writer at a time: a second run raises :class:`IndexBusyError`, or queues behind the first with ``wait``.
    ``repair`` rebuilds the vector and BM25 files of the index from SQLite and the embedding cache (after a
    missing or damaged file), besides indexing what changed. ``rechunk`` re-reads and re-chunks every file with
    ``config.chunking`` (an index otherwise refuses chunking other than the one it records) and re-encodes the
    chunks whose text is new; ``source`` must then cover every file of the index.

    >>> summary = build_index("data/sample", ".e5search/sample")   # doctest: +SKIP
    >>> summary.to_json()["added"]                                  # doctest: +SKIP
    """
    t0 = time.perf_counter()
    source, store = Path(source).expanduser().resolve(), open_store(index_dir)
    job = _Job(source, store, config, show_progress, progress, repair, rechunk)
    with store.writer_lock(wait=wait):
        try:
            summary = job.run(encoder)
        except KeyboardInterrupt:
            raise IndexingInterrupted(committed=job.committed) from None
    summary.seconds = time.perf_counter() - t0
    logger.info("indexed %s: %s", source, summary.to_json())
    return summary


@dataclass
class _Job:
    """One indexing run, holding the writer lock: read what changed, encode it, commit the next generation."""

    source: Path
    store: Store
    config: IndexConfig
    show_progress: bool
    progress: Progress | None
    repair: bool
    rechunk: bool = False
    committed: bool = False

    @property
    def layout(self) -> Layout | None:
        """A folder index's generation files; None in a database."""
        return self.store.layout if isinstance(self.store, FolderStore) else None

    def run(self, encoder: TextEncoder | None) -> IndexSummary:
        self.store.read_manifest(complete=False)  # refuses a foreign index.sqlite
        if self.layout is not None and not self.layout.exists():
            _refuse_foreign_files(self.layout)
        engine = self.store.engine(create=True)
        try:
            with Session(engine) as session:
                manifest = read_manifest(session)
                known = {f.path: f for f in session.scalars(select(FileRow))}
                session.expunge_all()
            root = _resolve_root(self.source, manifest)
            encoder = encoder or encoder_for_index(manifest, self.config.model)  # auto follows the index
            _check_compatible(manifest, encoder, self.config, self.rechunk)
            if self.rechunk:
                _check_rechunk_scope(self.source, root, known)
            if self.layout is not None:
                _check_generation_files(self.layout, manifest.get("generation", 0), self.repair)
            # keyed by the exact numerics (an int8 artefact's format too), so a run never resumes from vectors
            # an older build of the same backend made
            cache = EmbeddingCache(self.store.embedding_cache(manifest), encoder.cache_key, encoder.dim)
            try:
                return self._encode_and_commit(engine, manifest, known, root, encoder, cache)
            finally:
                cache.close()
        finally:
            engine.dispose()

    def _encode_and_commit(
        self,
        engine,
        manifest: dict,
        known: dict[str, FileRow],
        root: Path,
        encoder: TextEncoder,
        cache: EmbeddingCache,
    ) -> IndexSummary:
        found, batch = _Scan(), self.config.model.batch_size
        if encoder.on_gpu:  # the reader thread reads on while the GPU works: start early, groups doubling
            encoding = CachedEncoding(
                encoder, cache, ENCODE_GROUP_BATCHES * batch, self.show_progress, first_group=batch
            )
        else:
            group = CPU_GROUP_BATCHES * batch
            encoding = CachedEncoding(
                encoder, cache, group, self.show_progress, first_group=group, pool=CPU_POOL_GROUPS * group
            )
        scan = _scan(self.source, root, known, encoder, self.config, found, self.show_progress, self.rechunk)
        prepared = _read_and_encode(scan, encoding, encoder.on_gpu, self.progress)
        if self.repair:  # every chunk's vector, from the cache (or encoded again where it has none)
            with Session(engine) as session:
                encoding.add(all_passages(session)[1])
        vectors = encoding.finish(self.progress)
        scope = "" if self.source == root else relative_path(self.source, root)
        removed = [p for p in known if _in_scope(p, scope, self.source.is_file()) and p not in found.seen]
        summary = _summary(prepared, removed, found, encoding.encoded)
        with Session(engine) as session, session.begin():
            for rel, mtime in found.touched.items():
                session.query(FileRow).filter(FileRow.path == rel).update({"mtime": mtime})
            gen = manifest.get("generation", 0)
            if prepared or removed or not gen or self.repair:
                gen = _write(
                    session,
                    self.store,
                    manifest,
                    prepared,
                    removed,
                    vectors,
                    encoder,
                    self.config,
                    root,
                    self.show_progress,
                    self.progress,
                    rebuild_dense=self.repair,
                )
            summary.chunks = session.query(ChunkRow).count()
        self.committed = True
        if self.layout is not None:
            self.layout.remove_generations(keep={manifest.get("generation", 0), gen})
        with Session(engine) as session:
            cache.prune(session.scalars(select(ChunkRow.text_hash)).all())
        return summary


def _check_rechunk_scope(source: Path, root: Path, known: dict[str, FileRow]) -> None:
    """``--rechunk`` must reach every file of the index: chunks of two chunkings never share one index."""
    scope = "" if source == root else relative_path(source, root)
    outside = sorted(p for p in known if not _in_scope(p, scope, source.is_file()))
    if outside:
        raise ConfigError(
            f"--rechunk re-chunks the whole index, which also holds {outside[0]} (outside {source}): "
            f"give the indexed folder {root}"
        )


def _summary(prepared: list[_Prepared], removed: list[str], found: _Scan, encoded: int) -> IndexSummary:
    return IndexSummary(
        added=sum(1 for p in prepared if p.is_new and not p.reason),
        updated=sum(1 for p in prepared if not p.is_new and not p.reason),
        removed=len(removed),
        unchanged=found.unchanged,
        skipped=found.skipped + [{"path": p.rel, "reason": p.reason} for p in prepared if p.reason],
        chunks_encoded=encoded,
    )


def _check_generation_files(layout: Layout, current: int, repair: bool) -> None:
    """A folder index's current files must be there (else ``--repair``); leftovers of a crashed run go."""
    if current and not repair:
        for path in (layout.dense(current), layout.bm25(current)):
            if not path.exists():
                raise layout.damaged(path, "missing")
    layout.remove_generations(keep={current - 1, current})


def _refuse_foreign_files(layout: Layout) -> None:
    """A first run never deletes or overwrites files it did not make: generation-named files in a folder that
    holds no index are someone else's."""
    stray = sorted(p.name for p in layout.index_files() if p.name != LOCK_NAME)
    if stray:
        raise ConfigError(
            f"{layout.root} holds {', '.join(stray[:3])}{' ...' if len(stray) > 3 else ''} but no e5search index: "
            "they are not this program's; move them away or give another --index folder"
        )
