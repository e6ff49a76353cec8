"""The indexing job's first half: walk the folder, decide what changed, read and chunk it.

A file whose size and mtime match the index is unchanged; otherwise its content hash decides. Changed files
are read (:mod:`indexer.ingest`), chunked to the encoder's budget and language-tagged; every file that cannot
be indexed gets a reason. Nothing here writes to the index.
"""

from __future__ import annotations

import copy
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from indexer.cache import file_sha256
from indexer.config import IndexConfig
from indexer.encoding.encoder import TextEncoder, check_encoder
from indexer.errors import ConfigError, SkipFile
from indexer.ingest.chunking import chunk_document, passage_text
from indexer.ingest.langdetect import detect_languages
from indexer.ingest.loaders import is_supported, iter_files, read_documents
from indexer.storage.store import FileRow
from indexer.tokens import count_tokens
from indexer.types import ChunkDraft, Document


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
    check_encoder(manifest, encoder)
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
        raise ConfigError(
            f"model max length {encoder.max_length} leaves {budget} tokens per chunk; too small"
        )
    return budget


def _prepare(
    path: Path,
    rel: str,
    st: os.stat_result,
    digest: str,
    is_new: bool,
    root: Path,
    tokenizer,
    budget: int,
    config: IndexConfig,
) -> _Prepared:
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
        passages = [
            passage_text(doc.title, c.heading_path, c.text, tokenizer, config.chunking.max_title_tokens)
            for c in chunks
        ]
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


def _scan(
    source: Path,
    root: Path,
    known: dict[str, FileRow],
    encoder: TextEncoder,
    config: IndexConfig,
    found: _Scan,
    show_progress: bool,
) -> Iterator[tuple[int, int, _Prepared | None]]:
    """Yields ``(files done, files in all, the file read or None)`` per file; runs on the read-ahead thread,
    with its own copy of the tokenizer (a fast tokenizer used from two threads at once can fail with
    "Already borrowed" when their truncation settings differ)."""
    budget = _body_budget(encoder, config)
    tokenizer = copy.deepcopy(encoder.tokenizer)
    files = list(iter_files(source, supported_only=False))
    for i, path in enumerate(tqdm(files, desc="reading", unit="file", disable=not show_progress)):
        rel = path.relative_to(root).as_posix()
        found.seen.add(rel)
        prep = None
        try:
            st = path.stat()
            old = known.get(rel)
            if not stat.S_ISREG(st.st_mode):  # a FIFO or device would block or never end when read
                found.skipped.append({"path": rel, "reason": "not a regular file (a FIFO, socket or device)"})
            elif old is not None and old.size == st.st_size and old.mtime == st.st_mtime:
                found.unchanged += 1
            else:
                digest = file_sha256(path)
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


def _in_scope(rel: str, scope: str, source_is_file: bool) -> bool:
    if source_is_file:
        return rel == scope
    return scope == "" or rel == scope or rel.startswith(scope + "/")
