"""The indexing job's second half: everything one SQLite transaction changes, and the next generation's files.

Changed documents are rewritten, removed ones deleted; FAISS and BM25 files of the next generation are written
beside the current ones, and the manifest's generation is bumped in the same transaction: that commit is the
atomic switch (:mod:`indexer.storage.layout`).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session
from tqdm.auto import tqdm

from indexer import __version__
from indexer.build.scan import _Prepared
from indexer.cache import package_versions
from indexer.config import IndexConfig
from indexer.encoding.encoder import TextEncoder
from indexer.ingest.chunking import passage_text
from indexer.retrieval.dense import DenseIndex
from indexer.storage.embcache import text_hash
from indexer.storage.layout import Layout
from indexer.storage.store import ChunkRow, DocumentRow, FileRow, utcnow, write_manifest
from indexer.types import Progress

_RECORDED_PACKAGES = ("faiss-cpu", "sentence-transformers", "transformers", "torch", "bm25s", "sqlalchemy")


def _insert_file(
    session: Session, prep: _Prepared, vectors: dict[str, np.ndarray]
) -> tuple[list[int], list[np.ndarray]]:
    status = "skipped" if prep.reason else "indexed"
    row = FileRow(
        path=prep.rel,
        content_hash=prep.content_hash,
        mtime=prep.mtime,
        size=prep.size,
        status=status,
        reason=prep.reason,
        indexed_at=utcnow(),
    )
    session.add(row)
    session.flush()
    ids: list[int] = []
    vecs: list[np.ndarray] = []
    for doc, chunks, langs, texts in prep.docs:
        lang = Counter(langs).most_common(1)[0][0] if langs else "und"
        drow = DocumentRow(
            file_id=row.id,
            path=doc.path,
            external_id=doc.external_id,
            title=doc.title,
            file_type=doc.file_type,
            lang=lang,
            n_chars=len(doc.text),
        )
        session.add(drow)
        session.flush()
        if not chunks:
            continue
        params = [
            {
                "document_id": drow.id,
                "ordinal": j,
                "text": c.text,
                "start": c.start,
                "end": c.end,
                "heading_path": json.dumps(list(c.heading_path), ensure_ascii=False),
                "lang": lg,
                "n_tokens": c.n_tokens,
                "text_hash": text_hash(t),
            }
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
        select(
            ChunkRow.id,
            ChunkRow.text,
            ChunkRow.heading_path,
            ChunkRow.lang,
            ChunkRow.text_hash,
            DocumentRow.title,
        )
        .join(DocumentRow, ChunkRow.document_id == DocumentRow.id)
        .order_by(ChunkRow.id)
    ).all()
    ids = [r[0] for r in rows]
    texts = [passage_text(r[5], tuple(json.loads(r[2])), r[1]) for r in rows]
    return ids, texts, [r[3] for r in rows], [r[4] for r in rows]


def _load_dense(layout: Layout, manifest: dict, dim: int) -> DenseIndex:
    """The current generation's vectors to update; a missing or unreadable file is an error that names
    ``--repair``, never an empty index (which would silently drop every unchanged chunk's vector)."""
    gen = manifest.get("generation", 0)
    return DenseIndex.load(layout.dense(gen)) if gen else DenseIndex.empty(dim)


def _write(
    session: Session,
    layout: Layout,
    manifest: dict,
    prepared: list[_Prepared],
    removed: list[str],
    vectors: dict[str, np.ndarray],
    encoder: TextEncoder,
    config: IndexConfig,
    root: Path,
    show_progress: bool,
    progress: Progress | None,
    rebuild_dense: bool = False,
) -> int:
    """All changes in the caller's transaction; returns the new generation (files written and fsync'ed, not yet
    committed). ``rebuild_dense`` builds the vector index from every chunk's vector in ``vectors`` instead of
    updating the current one (``--repair``)."""
    from indexer.retrieval.bm25 import BM25Index

    gone = [p.rel for p in prepared if not p.is_new] + removed
    old_ids = (
        session.scalars(
            select(ChunkRow.id).join(DocumentRow).join(FileRow).where(FileRow.path.in_(gone))
        ).all()
        if gone
        else []
    )
    if gone:
        session.execute(delete(FileRow).where(FileRow.path.in_(gone)))
    dense = DenseIndex.empty(encoder.dim) if rebuild_dense else _load_dense(layout, manifest, encoder.dim)
    dense.remove(set(old_ids))
    for prep in tqdm(prepared, desc="writing", unit="file", disable=not show_progress):
        ids, vecs = _insert_file(session, prep, vectors)
        if ids:
            dense.add(np.asarray(ids, dtype=np.int64), np.stack(vecs))
    ids, texts, langs, hashes = _all_passages(session)
    if rebuild_dense:
        dense = DenseIndex.empty(encoder.dim)
        if ids:
            dense.add(np.asarray(ids, dtype=np.int64), np.stack([vectors[h] for h in hashes]))
    if progress:
        progress("writing", 0, 1)
    kind = (
        config.dense_kind
        if config.dense_kind != "auto"
        else ("hnsw" if len(dense) > config.ann_threshold else "flat")
    )
    if kind == "hnsw":
        dense.build_ann(m=config.hnsw_m)
    gen = manifest.get("generation", 0) + 1
    dense.save(layout.dense(gen), layout.hnsw(gen))
    bm25 = BM25Index.build(ids, texts, langs, k1=config.bm25_k1, b=config.bm25_b, show_progress=show_progress)
    bm25.save(layout.bm25(gen))
    layout.sync(gen)
    write_manifest(session, _manifest_values(manifest, gen, kind, encoder, config, root, len(ids)))
    if progress:
        progress("writing", 1, 1)
    return gen


def _manifest_values(
    manifest: dict, gen: int, kind: str, encoder: TextEncoder, config: IndexConfig, root: Path, n_chunks: int
) -> dict:
    return {
        "schema_version": 1,
        "generation": gen,
        "source_root": str(root),
        "model": encoder.describe(),
        "dim": encoder.dim,
        "dense_kind": kind,
        "config": config.to_dict(),
        "versions": {"e5search": __version__, **package_versions(*_RECORDED_PACKAGES)},
        "n_chunks": n_chunks,
        "created_at": manifest.get("created_at", utcnow()),
        "updated_at": utcnow(),
    }
