"""Readers of office formats: DOCX (headings from paragraph styles, tables as text) and PDF (a section per page).

PDF pages become sections with heading path ``("p. 3",)``, so every chunk knows its page; encrypted PDFs open
with the empty password or are skipped with the reason. DOCX titles come from the core properties, else the first
Title/Heading paragraph. PDF pages without a text layer are OCR'd when wanted (:mod:`indexer.ingest.ocr`) and get
the heading path ``("p. 3", "OCR")``. Non-goals: legacy .doc, text boxes, headers and footers.
"""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

from indexer.errors import SkipFile
from indexer.ingest import ocr
from indexer.ingest.limits import ReadLimits, check_zip
from indexer.ingest.text import (
    Outline,
    _headings_only_fallback,
    _normalise_newlines,
    make_document,
    stem_title,
)
from indexer.types import Document

logger = logging.getLogger(__name__)


_DOCX_HEADING = re.compile(r"^heading (\d)$", re.IGNORECASE)


_TRAILING_BLANKS = re.compile(r"(?<![ \t])[ \t]+\n")  # starts at a run's start only: linear on 1e6 spaces


def _read_docx(data: bytes, path: Path, rel: str, limits: ReadLimits) -> list[Document]:
    import docx
    from docx.table import Table

    check_zip(data, "DOCX", limits.max_unzipped_bytes, limits.max_bytes)
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as e:  # noqa: BLE001 - zipfile, lxml and python-docx errors alike
        raise SkipFile(f"corrupt DOCX: {type(e).__name__}: {e}") from None
    outline: Outline = []
    stack: list[tuple[int, str]] = []
    blocks: list[str] = []
    headings: list[str] = []
    for item in document.iter_inner_content():
        limits.deadline.check()
        if isinstance(item, Table):
            blocks.append(_docx_table_text(item))
            continue
        text = item.text.strip()
        level = _docx_heading_level(item.style)
        if level is None or not text:
            blocks.append(text)
            continue
        headings.append(text)
        outline.append((tuple(h for _, h in stack), "\n\n".join(b for b in blocks if b)))
        stack = [(lv, h) for lv, h in stack if lv < level] + [(level, text)]
        blocks = []
    outline.append((tuple(h for _, h in stack), "\n\n".join(b for b in blocks if b)))
    outline = _headings_only_fallback(outline, headings)
    title = (document.core_properties.title or "").strip() or next(iter(headings), "") or stem_title(path)
    return [make_document(rel, title, outline, "docx")]


def _docx_heading_level(style) -> int | None:
    """``"Title"`` → 0, ``"Heading 2"`` → 2, a custom style based on one of them → its level, else None."""
    for _ in range(4):  # custom heading styles are usually based on a built-in one, a level or two up
        if style is None:
            return None
        name = (style.name or "").strip()
        if name.lower() == "title":
            return 0
        m = _DOCX_HEADING.match(name)
        if m:
            return int(m.group(1))
        style = style.base_style
    return None


def _docx_table_text(table) -> str:
    rows = []
    for row in table.rows:
        cells: list[str] = []
        for cell in row.cells:
            text = re.sub(r"\s+", " ", cell.text).strip()
            if text and (not cells or cells[-1] != text):  # merged cells repeat their text
                cells.append(text)
        if cells:
            rows.append(" | ".join(cells))
    return "\n".join(rows)


def _read_pdf(data: bytes, path: Path, rel: str, limits: ReadLimits) -> list[Document]:
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        encrypted = reader.is_encrypted
    except Exception as e:  # noqa: BLE001 - pypdf raises many types for broken files
        raise SkipFile(f"corrupt PDF: {e}") from None
    if encrypted:
        _decrypt_pdf(reader)
    outline: Outline = []
    errors: list[str] = []
    for number, page in enumerate(_pdf_pages(reader), start=1):
        limits.deadline.check()
        try:
            text = page.extract_text() or ""
        except Exception as e:  # noqa: BLE001 - one bad page should not lose the others
            logger.warning("%s: page %d: text extraction failed: %s", rel, number, e)
            errors.append(f"page {number}: {e}")
            continue
        outline.append(((f"p. {number}",), _clean_pdf_text(text)))
    outline = _ocr_blank_pages(data, rel, outline, limits)
    if not any(t.strip() for _, t in outline):
        if errors:
            raise SkipFile(f"corrupt PDF: no page could be read ({errors[0]})")
        raise SkipFile(
            f"scanned PDF? no text layer (no extractable text on {len(outline)} "
            f"page{'' if len(outline) == 1 else 's'})"
            + (
                "; OCR read no text either"
                if ocr.wanted(limits.ocr)
                else f"; OCR is off: index with --ocr ({ocr.INSTALL})"
            )
        )
    return [make_document(rel, _pdf_title(reader) or stem_title(path), outline, "pdf")]


def _ocr_blank_pages(data: bytes, rel: str, outline: Outline, limits: ReadLimits) -> Outline:
    """Pages without a text layer, read by OCR when wanted: heading path ``("p. 3", "OCR")`` marks them."""
    blank = [int(h[0][3:]) for h, text in outline if not text.strip()]
    if not blank or not ocr.wanted(limits.ocr):
        return outline
    try:
        read = dict(ocr.ocr_pdf_pages(data, blank, limits.deadline))
    except SkipFile:  # the time budget: the file waits for the next run
        raise
    except Exception as e:  # noqa: BLE001 - PDFium or Tesseract failing costs the OCR, not the text pages
        logger.warning("%s: OCR failed: %s: %s", rel, type(e).__name__, e)
        return outline
    return [
        ((h[0], ocr.OCR_MARK), _clean_pdf_text(read[page])) if (page := int(h[0][3:])) in read else (h, text)
        for h, text in outline
    ]


def _decrypt_pdf(reader) -> None:
    """Open PDFs that are encrypted with an empty user password (common for 'no copy' flags); else skip."""
    try:
        ok = reader.decrypt("")
    except Exception as e:  # noqa: BLE001 - e.g. AES without the cryptography package
        raise SkipFile(f"encrypted PDF: cannot decrypt ({e})") from None
    if not ok:
        raise SkipFile("encrypted PDF: a password is required")


def _pdf_pages(reader) -> list:
    try:
        return list(reader.pages)
    except Exception as e:  # noqa: BLE001
        raise SkipFile(f"corrupt PDF: {e}") from None


def _pdf_title(reader) -> str:
    try:
        return str((reader.metadata.title or "") if reader.metadata else "").strip()
    except Exception:  # noqa: BLE001 - a broken info dictionary only costs the title
        return ""


def _clean_pdf_text(text: str) -> str:
    text = _normalise_newlines(text).replace("\x00", "")
    text = _TRAILING_BLANKS.sub("\n", text)
    return re.sub(r"\n{3,}", "\n\n", text)
