"""The indexing job's first half: walk the folder, decide what changed, read and chunk it.

A file whose size and mtime match the index is unchanged; otherwise its content hash decides. Changed files
are read (:mod:`indexer.ingest`), chunked to the encoder's budget and language-tagged; every file that cannot
be indexed gets a reason. Nothing here writes to the index.

Hostile input costs one file, never the run. Before a file is hashed or read it is refused, with a reason kept
in the index like any skip, when it is a link to outside the folder (unless ``follow_symlinks``), a broken
link, a link to a folder, not a regular file (a FIFO or ``/dev/zero`` would block or never end), or when its
path could collide with a BEIR record's (:class:`_Owners`). Such a refusal is stored with an empty content
hash, so the next run decides again instead of trusting size and mtime. Reading and chunking one file stops
after ``file_timeout_s``; anything a reader or the chunker raises becomes that file's reason.
"""

from __future__ import annotations

import copy
import logging
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
from indexer.ingest.limits import Deadline, OverBudget
from indexer.ingest.loaders import (
    MULTI_DOCUMENT_SUFFIXES,
    file_suffix,
    is_supported,
    iter_files,
    read_documents,
    relative_path,
)
from indexer.ingest.text import clean_text
from indexer.storage.store import FileRow
from indexer.tokens import count_tokens
from indexer.types import ChunkDraft, Document

logger = logging.getLogger(__name__)


_Read = tuple[Document, list[ChunkDraft], list[str], list[str]]  # doc, chunks, their languages, passages


@dataclass
class _Prepared:
    """A file that was read: its documents with chunks, or the reason it was skipped."""

    rel: str
    size: int
    mtime: float
    content_hash: str  # "" for a file refused before it was hashed
    is_new: bool
    docs: list[_Read] = field(default_factory=list)
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


def _check_compatible(
    manifest: dict, encoder: TextEncoder, config: IndexConfig, rechunk: bool = False
) -> None:
    """The encoder must be the index's; so must the chunking, unless this run re-chunks the whole index."""
    check_encoder(manifest, encoder)
    stored = manifest.get("config", {}).get("chunking")
    if stored and stored != config.to_dict()["chunking"] and not rechunk:
        raise ConfigError(
            f"index was chunked with {stored}; this run asks for {config.to_dict()['chunking']}. "
            "Pass --rechunk to re-chunk every file with the new settings, or leave the chunk flags out "
            "(the index keeps its own), or index into a new --index folder"
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


@dataclass
class _Owners:
    """Which file may write which document path (``DocumentRow.path`` is unique), decided before encoding.

    A BEIR record is stored as ``"<corpus>#<_id>"`` (and a mailbox's message as ``"<box>#<n>"``: a mailbox is a
    corpus here), so ``corpus.jsonl#x.txt`` beside ``corpus.jsonl`` could be a
    file and a record at once, and so could the records of ``corpus.jsonl#y.jsonl``. A file whose path starts
    with a corpus's path and ``#`` is refused whether or not the record exists, so the outcome never depends on
    which of the two was read first or is unchanged. Files outside this run's scope keep their documents:
    ``taken`` holds their paths (and this run's claims), ``kept_corpora`` the corpora among them.
    """

    corpora: set[str]
    kept_corpora: set[str]
    taken: dict[str, str]  # document path -> the file that writes it in this run, or keeps it

    @classmethod
    def build(cls, rels: list[str], known: dict[str, FileRow], source: Path, root: Path) -> _Owners:
        scope = "" if source == root else relative_path(source, root)
        kept = [p for p in known if not _in_scope(p, scope, source.is_file())]
        indexed = [p for p in kept if known[p].status == "indexed"]
        return cls(
            corpora={r for r in [*rels, *kept] if _is_corpus(r)},
            kept_corpora={p for p in indexed if _is_corpus(p)},
            taken={p: p for p in indexed if not _is_corpus(p)},
        )

    def shadowing(self, rel: str) -> str | None:
        """The corpus whose records could take this file's path, if any."""
        return next((c for c in _hash_prefixes(rel) if c in self.corpora), None)

    def clash(self, rel: str, docs: list[_Read]) -> str | None:
        """Why ``rel`` may not write these documents (a path another file writes or keeps), else None."""
        for doc, *_ in docs:
            owner = self.taken.get(doc.path)
            if owner is None or owner == rel:
                owner = next(
                    (c for c in _hash_prefixes(doc.path) if c in self.kept_corpora and c != rel), None
                )
            if owner is not None:
                what = f"record {doc.external_id!r}" if doc.external_id is not None else "it"
                return f"{what} would be stored as {doc.path}, which {owner} holds: rename one of them"
        return None

    def claim(self, rel: str, docs: list[_Read]) -> None:
        self.taken.update((doc.path, rel) for doc, *_ in docs)


def _is_corpus(rel: str) -> bool:
    return file_suffix(Path(rel)) in MULTI_DOCUMENT_SUFFIXES


def _hash_prefixes(path: str) -> list[str]:
    """``"a.jsonl#b#c"`` → ``["a.jsonl", "a.jsonl#b"]``: the corpora that could hold it as a record."""
    return [path[:i] for i, ch in enumerate(path) if ch == "#"]


@dataclass
class _Reader:
    """What reading one file needs: where, with which tokenizer and limits, and who owns which path."""

    root: Path
    tokenizer: object
    budget: int  # tokens per chunk body
    config: IndexConfig
    owners: _Owners

    def refusal(self, path: Path, rel: str) -> tuple[str | None, os.stat_result]:
        """A reason to skip the file without opening it (and its stat), or None; OSError if it vanished."""
        if path.is_symlink():
            target = os.path.realpath(path)
            if not self.config.follow_symlinks and not _inside(target, os.path.realpath(self.root)):
                return (
                    f"a link to {clean_text(target)}, outside the indexed folder (--follow-symlinks indexes it)",
                    path.lstat(),
                )
            if not os.path.exists(target):
                return "a broken link (its target does not exist)", path.lstat()
        st = path.stat()
        if stat.S_ISDIR(st.st_mode):
            return "a link to a folder: folders behind links are not walked", st
        if not stat.S_ISREG(st.st_mode):
            return "not a regular file (a FIFO, socket or device): reading it could block forever", st
        corpus = self.owners.shadowing(rel) if is_supported(path) else None
        if corpus is not None:
            return f"its path could be a record of {corpus} ({corpus}#<id>): rename it", st
        return None, st

    def read(self, path: Path) -> list[_Read]:
        """Read, chunk and language-tag one file within its time budget (SkipFile when it is spent)."""
        config, tokenizer = self.config, self.tokenizer
        # per MB, at least one budget: a 10 MB corpus.jsonl of 5,000 abstracts legitimately takes minutes to chunk
        # (a flat 60 s skipped SciFact's), while a 100 KB file that takes a minute is pathological
        deadline = Deadline(config.file_timeout_s * max(1.0, path.stat().st_size / 2**20))
        docs = read_documents(
            path,
            self.root,
            max_bytes=int(config.max_file_mb * 1024 * 1024),
            max_unzipped_bytes=int(config.max_unzipped_mb * 1024 * 1024),
            deadline=deadline,
            ocr=config.ocr,
        )
        read: list[_Read] = []
        for doc in docs:
            deadline.check()
            chunks = chunk_document(doc, tokenizer, config.chunking, self.budget, deadline)
            langs = detect_languages([c.text for c in chunks])
            passages = [
                passage_text(doc.title, c.heading_path, c.text, tokenizer, config.chunking.max_title_tokens)
                for c in chunks
            ]
            read.append((doc, chunks, langs, passages))
        return read


def _prepare(
    path: Path, rel: str, st: os.stat_result, digest: str, is_new: bool, reader: _Reader
) -> _Prepared:
    """Read, chunk and tag a changed file, or give the reason it cannot be indexed."""
    prep = _Prepared(rel, st.st_size, st.st_mtime, digest, is_new)
    if not is_supported(path):
        prep.reason = f"unsupported file type {path.suffix or '(none)'!r}"
        return prep
    try:
        prep.docs = reader.read(path)
        clash = reader.owners.clash(rel, prep.docs)
        if clash is not None:
            raise SkipFile(clash)
    except SkipFile as exc:
        prep.docs, prep.reason = [], clean_text(exc.reason)
        if isinstance(exc, OverBudget):  # not the file's fault for sure: no hash, so the next run tries again
            prep.content_hash = ""
        return prep
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - one file's surprise must not end the run; logged in full
        logger.exception("%s: reading failed", rel)
        prep.docs, prep.reason = [], clean_text(f"reading failed: {type(exc).__name__}: {exc}")
        return prep
    if not any(chunks for _, chunks, _, _ in prep.docs):
        prep.docs, prep.reason = [], "no text to index"
    reader.owners.claim(rel, prep.docs)
    return prep


def _inside(target: str, root: str) -> bool:
    return os.path.commonpath([target, root]) == root


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
    rechunk: bool = False,
) -> Iterator[tuple[int, int, _Prepared | None]]:
    """Yields ``(files done, files in all, the file read or None)`` per file; runs on the read-ahead thread,
    with its own copy of the tokenizer (a fast tokenizer used from two threads at once can fail with
    "Already borrowed" when their truncation settings differ). ``rechunk`` reads every file again, changed
    or not."""
    budget = _body_budget(encoder, config)
    files = [(p, relative_path(p, root)) for p in iter_files(source, supported_only=False)]
    owners = _Owners.build([rel for _, rel in files], known, source, root)
    reader = _Reader(root, copy.deepcopy(encoder.tokenizer), budget, config, owners)
    for i, (path, rel) in enumerate(tqdm(files, desc="reading", unit="file", disable=not show_progress)):
        prep = None
        if rel in found.seen:  # two names that differ only in bytes that are not UTF-8, escaped alike
            found.skipped.append({"path": rel, "reason": "another file's name is stored the same way"})
        else:
            found.seen.add(rel)
            try:
                prep = _scan_one(reader, path, rel, known.get(rel), found, rechunk)
            except OSError as exc:
                found.skipped.append(
                    {"path": rel, "reason": clean_text(f"cannot read: {exc.strerror or exc}")}
                )
        yield i + 1, len(files), prep
    if not files:
        yield 0, 0, None


def _scan_one(
    reader: _Reader, path: Path, rel: str, old: FileRow | None, found: _Scan, rechunk: bool = False
) -> _Prepared | None:
    """The file to (re)write, or None when the index already has it as it is (and this run does not re-chunk)."""
    reason, st = reader.refusal(path, rel)
    if reason is not None:
        if old is not None and old.content_hash == "" and old.reason == reason:
            found.unchanged += 1
            return None
        return _Prepared(rel, st.st_size, st.st_mtime, "", old is None, reason=reason)
    if (
        old is not None
        and old.content_hash
        and old.size == st.st_size
        and old.mtime == st.st_mtime
        and not rechunk
    ):
        found.unchanged += 1
        return None
    digest = file_sha256(path)
    if old is not None and old.content_hash == digest and not rechunk:
        found.unchanged += 1
        found.touched[rel] = st.st_mtime
        return None
    return _prepare(path, rel, st, digest, old is None, reader)


def _in_scope(rel: str, scope: str, source_is_file: bool) -> bool:
    if source_is_file:
        return rel == scope
    return scope == "" or rel == scope or rel.startswith(scope + "/")
