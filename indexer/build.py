"""The indexing job: scan a folder, read and chunk what changed, encode, and switch to the new index atomically.

Flow: scan → read + chunk (changed files only) → detect languages → encode (through the embedding cache, a group
of chunks at a time as files are read; with a GPU encoder reading runs on a thread beside it, :mod:`indexer.pipeline`) →
one SQLite transaction that rewrites the changed documents, writes the next generation of FAISS and BM25 files
and bumps the generation in the manifest. See :mod:`indexer.layout` for why that is crash-safe.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session
from tqdm.auto import tqdm

from indexer import __version__
from indexer.chunking import chunk_document, passage_text
from indexer.config import IndexConfig
from indexer.dense import DenseIndex
from indexer.embcache import EmbeddingCache, text_hash
from indexer.encoder import TextEncoder, count_tokens
from indexer.errors import ConfigError, IndexStateError, SkipFile
from indexer.langdetect import detect_languages
from indexer.layout import Layout
from indexer.loaders import is_supported, read_documents
from indexer.pipeline import CachedEncoding, read_ahead
from indexer.store import ChunkRow, DocumentRow, FileRow, open_engine, read_manifest, utcnow, write_manifest
from indexer.types import ChunkDraft, Document

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (stage, done, total)
READ_AHEAD_FILES = 256  # files read and chunked ahead of the encoder
ENCODE_GROUP_BATCHES = 8  # model batches per encoder call: fewer calls, and each group is committed to the cache


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


@dataclass
class _Prepared:
    """A file that was read: its documents with chunks, or the reason it was skipped."""

    rel: str
    size: int
    mtime: float
    content_hash: str
    is_new: bool
    # (doc, chunks, chunk languages, passage texts as embedded)
    docs: list[tuple[Document, list[ChunkDraft], list[str], list[str]]] = field(default_factory=list)
    reason: str | None = None


def _walk(source: Path) -> Iterator[Path]:
    if source.is_file():
        yield source
        return
    for dirpath, dirnames, filenames in os.walk(source):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith("."):
                yield Path(dirpath) / name


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _resolve_root(source: Path, manifest: dict) -> Path:
    if not source.exists():
        raise ConfigError(f"{source} does not exist: give a folder or a file to index")
    if "source_root" not in manifest:
        return source if source.is_dir() else source.parent
    root = Path(manifest["source_root"])
    if source != root and root not in source.parents:
        raise ConfigError(
            f"this index holds files from {root}; {source} is outside it. "
            "Index it into another --index folder, or index a common parent folder into a new index"
        )
    return root


def _check_compatible(manifest: dict, encoder: TextEncoder, config: IndexConfig) -> None:
    from indexer.backends import mismatch_hint

    model = manifest.get("model")
    if model and model.get("fingerprint") != encoder.fingerprint:
        hint = mismatch_hint(model, getattr(encoder, "model_fingerprint", None))
        raise IndexStateError(
            f"index was built with model {model.get('model')!r} (fingerprint {model.get('fingerprint')}); "
            f"the encoder given is {encoder.name!r} ({encoder.fingerprint})."
            + (hint or " Use the same --model, or index into a new --index folder")
        )
    stored = manifest.get("config", {}).get("chunking")
    if stored and stored != config.to_dict()["chunking"]:
        raise ConfigError(
            f"index was chunked with {stored}; this run asks for {config.to_dict()['chunking']}. "
            "Use the same chunking settings, or index into a new --index folder"
        )


def _body_budget(encoder: TextEncoder, config: IndexConfig) -> int:
    """Tokens left for a chunk's text after special tokens, the passage prompt and the title header."""
    prompt = count_tokens(encoder.tokenizer, [encoder.passage_prompt])[0] if encoder.passage_prompt else 0
    budget = encoder.max_length - 2 - prompt - config.chunking.max_title_tokens - 2
    if budget < 16:
        raise ConfigError(f"model max length {encoder.max_length} leaves {budget} tokens per chunk; too small")
    return budget


def _prepare(path: Path, rel: str, st: os.stat_result, digest: str, is_new: bool, root: Path,
             tokenizer, budget: int, config: IndexConfig) -> _Prepared:
    prep = _Prepared(rel, st.st_size, st.st_mtime, digest, is_new)
    if not is_supported(path):
        prep.reason = f"unsupported file type {path.suffix or '(none)'!r}"
        return prep
    try:
        docs = read_documents(path, root, max_bytes=int(config.max_file_mb * 1024 * 1024))
    except SkipFile as exc:
        prep.reason = exc.reason
        return prep
    for doc in docs:
        chunks = chunk_document(doc, tokenizer, config.chunking, budget)
        langs = detect_languages([c.text for c in chunks])
        passages = [passage_text(doc.title, c.heading_path, c.text, tokenizer,
                                 config.chunking.max_title_tokens) for c in chunks]
        prep.docs.append((doc, chunks, langs, passages))
    if not any(chunks for _, chunks, _, _ in prep.docs):
        prep.docs, prep.reason = [], "no text to index"
    return prep


@dataclass
class _Scan:
    """What reading the folder found besides the files to (re)write."""

    seen: set[str] = field(default_factory=set)  # relative paths present in the folder
    touched: dict[str, float] = field(default_factory=dict)  # content-identical files: their new mtimes
    unchanged: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)  # unreadable files


def _scan(source: Path, root: Path, known: dict[str, FileRow], encoder: TextEncoder, config: IndexConfig,
          found: _Scan, show_progress: bool) -> Iterator[tuple[int, int, _Prepared | None]]:
    """Yields ``(files done, files in all, the file read or None)`` per file; runs on the read-ahead thread,
    with its own copy of the tokenizer (a fast tokenizer used from two threads at once can fail with
    "Already borrowed" when their truncation settings differ)."""
    budget = _body_budget(encoder, config)
    tokenizer = copy.deepcopy(encoder.tokenizer)
    files = list(_walk(source))
    for i, path in enumerate(tqdm(files, desc="reading", unit="file", disable=not show_progress)):
        rel = path.relative_to(root).as_posix()
        found.seen.add(rel)
        prep = None
        try:
            st = path.stat()
            old = known.get(rel)
            if old is not None and old.size == st.st_size and old.mtime == st.st_mtime:
                found.unchanged += 1
            else:
                digest = _file_hash(path)
                if old is not None and old.content_hash == digest:
                    found.unchanged += 1
                    found.touched[rel] = st.st_mtime
                else:
                    prep = _prepare(path, rel, st, digest, old is None, root, tokenizer, budget, config)
        except OSError as exc:
            found.skipped.append({"path": rel, "reason": f"cannot read: {exc.strerror or exc}"})
        yield i + 1, len(files), prep
    if not files:
        yield 0, 0, None


def _read_and_encode(scan: Iterator[tuple[int, int, _Prepared | None]], encoding: CachedEncoding, overlap: bool,
                     progress: Progress | None) -> list[_Prepared]:
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


def _insert_file(session: Session, prep: _Prepared, vectors: dict[str, np.ndarray]) -> tuple[list[int], list[np.ndarray]]:
    status = "skipped" if prep.reason else "indexed"
    row = FileRow(path=prep.rel, content_hash=prep.content_hash, mtime=prep.mtime, size=prep.size,
                  status=status, reason=prep.reason, indexed_at=utcnow())
    session.add(row)
    session.flush()
    ids: list[int] = []
    vecs: list[np.ndarray] = []
    for doc, chunks, langs, texts in prep.docs:
        lang = Counter(langs).most_common(1)[0][0] if langs else "und"
        drow = DocumentRow(file_id=row.id, path=doc.path, external_id=doc.external_id, title=doc.title,
                           file_type=doc.file_type, lang=lang, n_chars=len(doc.text))
        session.add(drow)
        session.flush()
        if not chunks:
            continue
        params = [
            {"document_id": drow.id, "ordinal": j, "text": c.text, "start": c.start, "end": c.end,
             "heading_path": json.dumps(list(c.heading_path), ensure_ascii=False), "lang": lg,
             "n_tokens": c.n_tokens, "text_hash": text_hash(t)}
            for j, (c, lg, t) in enumerate(zip(chunks, langs, texts))
        ]
        new_ids = session.scalars(
            insert(ChunkRow).returning(ChunkRow.id, sort_by_parameter_order=True), params
        ).all()
        ids.extend(new_ids)
        vecs.extend(vectors[text_hash(t)] for t in texts)
    return ids, vecs


def _all_passages(session: Session) -> tuple[list[int], list[str], list[str], list[str]]:
    rows = session.execute(
        select(ChunkRow.id, ChunkRow.text, ChunkRow.heading_path, ChunkRow.lang, ChunkRow.text_hash,
               DocumentRow.title)
        .join(DocumentRow, ChunkRow.document_id == DocumentRow.id)
        .order_by(ChunkRow.id)
    ).all()
    ids = [r[0] for r in rows]
    texts = [passage_text(r[5], tuple(json.loads(r[2])), r[1]) for r in rows]
    return ids, texts, [r[3] for r in rows], [r[4] for r in rows]


def _load_dense(layout: Layout, manifest: dict, dim: int) -> DenseIndex:
    gen = manifest.get("generation", 0)
    path = layout.dense(gen)
    return DenseIndex.load(path) if gen and path.exists() else DenseIndex.empty(dim)


def _write(session: Session, layout: Layout, manifest: dict, prepared: list[_Prepared], removed: list[str],
           vectors: dict[str, np.ndarray], encoder: TextEncoder, config: IndexConfig, root: Path,
           show_progress: bool, progress: Progress | None) -> int:
    """All changes in the caller's transaction; returns the new generation (files written, not yet committed)."""
    from indexer.bm25 import BM25Index

    gone = [p.rel for p in prepared if not p.is_new] + removed
    old_ids = session.scalars(
        select(ChunkRow.id).join(DocumentRow).join(FileRow).where(FileRow.path.in_(gone))
    ).all() if gone else []
    if gone:
        session.execute(delete(FileRow).where(FileRow.path.in_(gone)))
    dense = _load_dense(layout, manifest, encoder.dim)
    dense.remove(set(old_ids))
    for prep in tqdm(prepared, desc="writing", unit="file", disable=not show_progress):
        ids, vecs = _insert_file(session, prep, vectors)
        if ids:
            dense.add(np.asarray(ids, dtype=np.int64), np.stack(vecs))
    if progress:
        progress("writing", 0, 1)
    kind = config.dense_kind if config.dense_kind != "auto" else (
        "hnsw" if len(dense) > config.ann_threshold else "flat")
    if kind == "hnsw":
        dense.build_ann(m=config.hnsw_m)
    gen = manifest.get("generation", 0) + 1
    dense.save(layout.dense(gen), layout.hnsw(gen))
    ids, texts, langs, _ = _all_passages(session)
    bm25 = BM25Index.build(ids, texts, langs, k1=config.bm25_k1, b=config.bm25_b, show_progress=show_progress)
    bm25.save(layout.bm25(gen))
    write_manifest(session, _manifest_values(manifest, gen, kind, encoder, config, root, len(ids)))
    if progress:
        progress("writing", 1, 1)
    return gen


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"e5search": __version__}
    for pkg in ("faiss-cpu", "sentence-transformers", "transformers", "torch", "bm25s", "sqlalchemy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def _manifest_values(manifest: dict, gen: int, kind: str, encoder: TextEncoder, config: IndexConfig,
                     root: Path, n_chunks: int) -> dict:
    describe = getattr(encoder, "describe", None)
    return {
        "schema_version": 1,
        "generation": gen,
        "source_root": str(root),
        "model": describe() if describe else {"model": encoder.name, "fingerprint": encoder.fingerprint,
                                              "dim": encoder.dim},
        "dim": encoder.dim,
        "dense_kind": kind,
        "config": config.to_dict(),
        "versions": _versions(),
        "n_chunks": n_chunks,
        "created_at": manifest.get("created_at", utcnow()),
        "updated_at": utcnow(),
    }


def _in_scope(rel: str, scope: str, source_is_file: bool) -> bool:
    if source_is_file:
        return rel == scope
    return scope == "" or rel == scope or rel.startswith(scope + "/")


def build_index(source: str | Path, index_dir: str | Path, config: IndexConfig = IndexConfig(),
                encoder: TextEncoder | None = None, show_progress: bool = False,
                progress: Progress | None = None) -> IndexSummary:
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
            from indexer.backends import backend_for_index
            from indexer.encoder import Encoder

            encoder = Encoder(backend_for_index(config.model, manifest.get("model")))  # auto follows the index
        _check_compatible(manifest, encoder, config)
        layout.remove_other_generations(keep=manifest.get("generation", 0))

        # keyed by the exact numerics (an int8 artefact's format too), so a run never resumes from vectors an
        # older build of the same backend made
        cache = EmbeddingCache(layout.cache_db, getattr(encoder, "cache_key", encoder.fingerprint), encoder.dim)
        try:
            found = _Scan()
            batch = config.model.batch_size
            encoding = CachedEncoding(encoder, cache, ENCODE_GROUP_BATCHES * batch, show_progress, first_group=batch)
            scan = _scan(source, root, known, encoder, config, found, show_progress)
            prepared = _read_and_encode(scan, encoding, bool(getattr(encoder, "on_gpu", False)), progress)
            vectors = encoding.finish(progress)
            summary.chunks_encoded = encoding.encoded
            scope = "" if source == root else source.relative_to(root).as_posix()
            removed = [p for p in known if _in_scope(p, scope, source.is_file()) and p not in found.seen]
            summary.added = sum(1 for p in prepared if p.is_new and not p.reason)
            summary.updated = sum(1 for p in prepared if not p.is_new and not p.reason)
            summary.removed, summary.unchanged = len(removed), found.unchanged
            summary.skipped += found.skipped + [{"path": p.rel, "reason": p.reason} for p in prepared if p.reason]
            with Session(engine) as session, session.begin():
                for rel, mtime in found.touched.items():
                    session.query(FileRow).filter(FileRow.path == rel).update({"mtime": mtime})
                if prepared or removed or not manifest.get("generation"):
                    gen = _write(session, layout, manifest, prepared, removed, vectors, encoder, config, root,
                                 show_progress, progress)
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
