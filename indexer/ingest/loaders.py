"""File formats → :class:`~indexer.types.Document`.

Scope: plain text (.txt), Markdown (.md, .markdown), reStructuredText (.rst), HTML (.html, .htm, .xhtml, .xht),
PDF, DOCX, PowerPoint (.pptx), Excel (.xlsx, .xlsm), OpenDocument text (.odt), EPUB, e-mail (.eml, .mbox) and BEIR
corpora (.jsonl, .jsonl.gz, .json). Each reader returns sections that carry their heading path; the caller
chunks them. Anything that goes wrong with a file raises :class:`~indexer.errors.SkipFile` with a reason that a
person can act on; no library exception escapes :func:`read_documents`.

Decisions worth knowing:

- ``Document.path`` is the path relative to the indexed folder, in POSIX form; records of a BEIR file are
  ``"rel/corpus.jsonl#<_id>"`` with ``external_id=_id``, messages of a mailbox ``"rel/box.mbox#<n>"`` (no
  external id: the path is their key). :data:`MULTI_DOCUMENT_SUFFIXES` names the files whose documents are so named.
- Sections are stripped and never empty; ``Section.start`` is the offset in ``Document.text``, which joins the
  sections with a blank line.
- PDF: one section per page with heading path ``("p. 3",)``, so every chunk knows its page. PPTX: one per slide,
  ``("slide 3", "<slide title>")``; XLSX: one per sheet, rows as ``header: value; ...`` lines; EPUB: the chapters'
  own headings, in spine order.
- BEIR files are all or nothing: a malformed line, a record without ``_id``/``text`` or a duplicate ``_id``
  skips the whole file with a reason naming the line, so a half-indexed corpus never goes unnoticed.
- Folder walks yield supported files only (others are not documents); a single file given directly is yielded
  whatever its suffix, so an unsupported one is reported as skipped rather than silently ignored.
- Text encodings: a BOM wins, then strict UTF-8, then charset-normalizer with near-ties broken towards today's
  common encodings (cp1252 before Mac Roman). NUL bytes without a UTF-16/32 BOM mean binary: skipped.
- Titles: HTML ``<title>`` (else first h1), YAML front matter ``title:`` (else first Markdown H1), the first RST
  section title, DOCX core title (else first Title/Heading paragraph), PDF ``/Title``; else the file stem with
  ``_`` and ``-`` as spaces (always so for .txt). BEIR records keep their own title, possibly empty.
- Hostile input costs a reason, not the run (:mod:`indexer.ingest.limits`): a DOCX, PPTX, XLSX, ODT or EPUB that
  would expand too far is refused before parsing, and reading past the file's time budget stops between pages, paragraphs or records.
  A name that is not UTF-8 is kept with its stray bytes escaped (``caf\\xe9.txt``), so SQLite can store it.

Non-goals: OCR of scanned PDFs, legacy .doc/.xls/.ppt, .ods/.odp, attachments' contents, DOCX text
boxes/headers/footers.
"""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from indexer.errors import SkipFile
from indexer.ingest.beir import _read_json, _read_jsonl
from indexer.ingest.books import _read_epub
from indexer.ingest.limits import DEFAULT_MAX_UNZIPPED_BYTES, Deadline, ReadLimits, size_text
from indexer.ingest.mail import _read_eml, _read_mbox
from indexer.ingest.markup import _read_html, _read_markdown, _read_rst, _read_txt
from indexer.ingest.office import _read_docx, _read_pdf
from indexer.ingest.opendoc import _read_odt
from indexer.ingest.sheets import _read_xlsx
from indexer.ingest.slides import _read_pptx
from indexer.ingest.text import storable_path
from indexer.types import Document

SUPPORTED_SUFFIXES: frozenset[str] = frozenset(
    {".txt", ".md", ".markdown", ".rst", ".html", ".htm", ".xhtml", ".xht", ".pdf", ".docx", ".pptx", ".xlsx"}
    | {".xlsm", ".odt", ".epub", ".eml", ".mbox", ".json", ".jsonl", ".jsonl.gz"}
)


MULTI_DOCUMENT_SUFFIXES: frozenset[str] = frozenset({".jsonl", ".jsonl.gz", ".json", ".mbox"})
"""Files whose documents are stored as ``"<file>#<id>"``: BEIR corpora (records) and mailboxes (messages)."""


def file_suffix(path: Path) -> str:
    """The suffix that selects a reader: ``.jsonl.gz`` for compressed BEIR files, else the lower-cased suffix."""
    name = path.name.lower()
    return ".jsonl.gz" if name.endswith(".jsonl.gz") else path.suffix.lower()


def is_supported(path: Path) -> bool:
    return file_suffix(path) in SUPPORTED_SUFFIXES


def iter_files(root: Path, supported_only: bool = True) -> Iterator[Path]:
    """Files under ``root`` in sorted path order, hidden files and folders skipped: the one folder walker.

    ``supported_only`` yields regular files a reader exists for (what :func:`read_documents` can read); without
    it, every entry that is not a folder (unsupported files, FIFOs, sockets, broken links too), so an indexing
    run can report why it skipped each. The walk keeps its own stack, so a folder tree thousands of levels deep
    cannot overflow Python's recursion limit; symlinked folders are not entered (no cycles). A single file yields
    itself, supported or not.
    """
    root = Path(root)
    if not root.is_dir():
        yield root
        return
    found: list[tuple[tuple[str, ...], Path]] = []
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as entries:
                listed = list(entries)
        except OSError:
            continue  # an unreadable folder holds nothing we can index
        for entry in listed:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            if entry.is_dir(follow_symlinks=False):
                stack.append(path)
            elif not supported_only or (is_supported(path) and entry.is_file()):
                found.append((path.relative_to(root).parts, path))
    for _, path in sorted(found):
        yield path


def read_documents(
    path: Path,
    root: Path,
    max_bytes: int,
    max_unzipped_bytes: int = DEFAULT_MAX_UNZIPPED_BYTES,
    deadline: Deadline | None = None,
    ocr: bool | None = False,
) -> list[Document]:
    """Read one file into documents (one, or one per record for BEIR files).

    Args:
        path: the file.
        root: the folder being indexed (for a single file: its parent); ``Document.path`` is relative to it.
        max_bytes: larger files are skipped.
        max_unzipped_bytes: a zip-based document (DOCX, PPTX, XLSX, ODT, EPUB) whose XML would expand beyond
            this is skipped.
        deadline: the file's time budget, checked between pages, paragraphs and records (default: none).
        ocr: OCR PDF pages that have no text layer (None: when Tesseract is installed; ``indexer.ingest.ocr``).

    Raises:
        SkipFile: with a reason, for any file that cannot be indexed.
    """
    path, root = Path(path), Path(root)
    suffix = file_suffix(path)
    if suffix not in SUPPORTED_SUFFIXES:
        raise SkipFile(
            f"unsupported file type {suffix or '(no suffix)'!r}; supported: "
            + ", ".join(sorted(SUPPORTED_SUFFIXES))
        )
    data = _read_bytes(path, max_bytes)
    rel = relative_path(path, root)
    limits = ReadLimits(max_bytes, max_unzipped_bytes, deadline or Deadline(None), ocr)
    try:
        if suffix == ".jsonl.gz":
            data, suffix = _gunzip(data, max_bytes), ".jsonl"
        if suffix in _READERS_WITH_LIMITS:
            return _READERS_WITH_LIMITS[suffix](data, path, rel, limits)
        return _READERS[suffix](data, path, rel)
    except SkipFile:
        raise
    except RecursionError:
        raise SkipFile(f"cannot parse {suffix[1:].upper()}: nested too deeply") from None
    except Exception as e:  # noqa: BLE001 - library errors become a reason, never a crash
        raise SkipFile(f"cannot parse {suffix[1:].upper()}: {type(e).__name__}: {e}") from e


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    try:
        size = path.stat().st_size
        if size == 0:
            raise SkipFile("empty file")
        if size > max_bytes:
            raise SkipFile(
                f"file is {size_text(size)}, over the {size_text(max_bytes)} limit (--max-file-mb)"
            )
        return path.read_bytes()
    except PermissionError:
        raise SkipFile("permission denied") from None
    except IsADirectoryError:
        raise SkipFile("is a folder, not a file") from None
    except OSError as e:
        raise SkipFile(f"cannot read file: {e.strerror or e}") from None


def _gunzip(data: bytes, max_bytes: int) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
            raw = f.read(max_bytes + 1)
    except (OSError, EOFError) as e:
        raise SkipFile(f"corrupt gzip: {e}") from None
    if len(raw) > max_bytes:
        raise SkipFile(f"decompressed file is over the {size_text(max_bytes)} limit (--max-file-mb)")
    if not raw.strip():
        raise SkipFile("empty file (after decompression)")
    return raw


def relative_path(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` in POSIX form, as the index stores it: undecodable bytes of a name escaped
    (:func:`~indexer.ingest.text.storable_path`), so the same file always gets the same key."""
    for p, r in ((path, root), (path.absolute(), root.absolute()), (path.resolve(), root.resolve())):
        try:
            return storable_path(p.relative_to(r).as_posix())
        except ValueError:
            continue
    return storable_path(path.name)


_READERS: dict[str, Callable[[bytes, Path, str], list[Document]]] = {
    ".txt": _read_txt,
    ".md": _read_markdown,
    ".markdown": _read_markdown,
}


# readers that loop over pages, paragraphs, elements, lines or records check the file's time budget between
# them; the zip-based ones (DOCX, PPTX, XLSX, ODT, EPUB) also refuse a zip bomb before parsing
_READERS_WITH_LIMITS: dict[str, Callable[[bytes, Path, str, ReadLimits], list[Document]]] = {
    ".rst": _read_rst,
    ".html": _read_html,
    ".htm": _read_html,
    ".xhtml": _read_html,
    ".xht": _read_html,
    ".pdf": _read_pdf,
    ".docx": _read_docx,
    ".pptx": _read_pptx,
    ".xlsx": _read_xlsx,
    ".xlsm": _read_xlsx,
    ".odt": _read_odt,
    ".epub": _read_epub,
    ".eml": _read_eml,
    ".mbox": _read_mbox,
    ".jsonl": _read_jsonl,
    ".json": _read_json,
}
