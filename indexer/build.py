"""The indexing job: scan a folder, read and chunk what changed, encode, and switch to the new index atomically.

Flow: scan → read + chunk (changed files only) → detect languages → encode (through the embedding cache) →
one SQLite transaction that rewrites the changed documents, writes the next generation of FAISS and BM25 files
and bumps the generation in the manifest. See :mod:`indexer.layout` for why that is crash-safe.
"""

from __future__ import annotations

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
from indexer.store import ChunkRow, DocumentRow, FileRow, open_engine, read_manifest, utcnow, write_manifest
from indexer.types import ChunkDraft, Document

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (stage, done, total)


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
             encoder: TextEncoder, config: IndexConfig) -> _Prepared:
    prep = _Prepared(rel, st.st_size, st.st_mtime, digest, is_new)
    if not is_supported(path):
        prep.reason = f"unsupported file type {path.suffix or '(none)'!r}"
        return prep
    try:
        docs = read_documents(path, root, max_bytes=int(config.max_file_mb * 1024 * 1024))
    except SkipFile as exc:
        prep.reason = exc.reason
        return prep
    budget = _body_budget(encoder, config)
    for doc in docs:
        chunks = chunk_document(doc, encoder.tokenizer, config.chunking, budget)
        langs = detect_languages([c.text for c in chunks])
        passages = [passage_text(doc.title, c.heading_path, c.text, encoder.tokenizer,
                                 config.chunking.max_title_tokens) for c in chunks]
        prep.docs.append((doc, chunks, langs, passages))
    if not any(chunks for _, chunks, _, _ in prep.docs):
        prep.docs, prep.reason = [], "no text to index"
    return prep


def _scan(source: Path, root: Path, known: dict[str, FileRow], encoder: TextEncoder, config: IndexConfig,
          summary: IndexSummary, show_progress: bool, progress: Progress | None) -> tuple[list[_Prepared], set[str], dict[str, float]]:
    """Returns files to (re)write, relative paths seen, and mtimes to refresh for content-identical files."""
    files = list(_walk(source))
    prepared, seen, touched = [], set(), {}
    for i, path in enumerate(tqdm(files, desc="reading", unit="file", disable=not show_progress)):
        if progress:
            progress("reading", i, len(files))
        rel = path.relative_to(root).as_posix()
        seen.add(rel)
        try:
            st = path.stat()
            old = known.get(rel)
            if old is not None and old.size == st.st_size and old.mtime == st.st_mtime:
                summary.unchanged += 1
                continue
            digest = _file_hash(path)
        except OSError as exc:
            summary.skipped.append({"path": rel, "reason": f"cannot read: {exc.strerror or exc}"})
            continue
        if old is not None and old.content_hash == digest:
            summary.unchanged += 1
            touched[rel] = st.st_mtime
            continue
        prepared.append(_prepare(path, rel, st, digest, old is None, root, encoder, config))
    if progress:
        progress("reading", len(files), len(files))
    return prepared, seen, touched


def _encode(texts: list[str], encoder: TextEncoder, cache: EmbeddingCache, batch_size: int,
            show_progress: bool, progress: Progress | None) -> tuple[np.ndarray, int]:
    """Vectors of ``texts``: from the cache where known, else encoded longest first and cached group by group.

    Sorting the whole to-do list by length (not just each model batch) keeps padding low; groups of several
    batches per call keep per-call overhead low while every finished group is committed to the cache, so an
    interrupted run resumes where it stopped.
    """
    hashes = [text_hash(t) for t in texts]
    found = cache.get(hashes)
    todo = sorted({h: i for i, h in enumerate(hashes) if h not in found}.values(), key=lambda i: -len(texts[i]))
    group = 8 * batch_size
    bar = tqdm(total=len(todo), desc="encoding", unit="chunk", disable=not show_progress)
    for start in range(0, len(todo), group):
        if progress:
            progress("encoding", start, len(todo))
        part = todo[start : start + group]
        vecs = encoder.encode_passages([texts[i] for i in part])  # (len(part), dim)
        cache.put([hashes[i] for i in part], vecs)
        found.update({hashes[i]: v for i, v in zip(part, vecs)})
        bar.update(len(part))
    bar.close()
    if progress:
        progress("encoding", len(todo), len(todo))
    out = np.stack([found[h] for h in hashes]) if hashes else np.zeros((0, encoder.dim), np.float32)
    return out.astype(np.float32), len(todo)


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

        prepared, seen, touched = _scan(source, root, known, encoder, config, summary, show_progress, progress)
        scope = "" if source == root else source.relative_to(root).as_posix()
        removed = [p for p in known if _in_scope(p, scope, source.is_file()) and p not in seen]
        summary.added = sum(1 for p in prepared if p.is_new and not p.reason)
        summary.updated = sum(1 for p in prepared if not p.is_new and not p.reason)
        summary.removed = len(removed)
        summary.skipped += [{"path": p.rel, "reason": p.reason} for p in prepared if p.reason]

        texts = [t for p in prepared for _, _, _, ts in p.docs for t in ts]
        cache = EmbeddingCache(layout.cache_db, encoder.fingerprint, encoder.dim)
        try:
            vecs, summary.chunks_encoded = _encode(texts, encoder, cache, config.model.batch_size,
                                                   show_progress, progress)
            vectors = {text_hash(t): v for t, v in zip(texts, vecs)}
            with Session(engine) as session, session.begin():
                for rel, mtime in touched.items():
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
