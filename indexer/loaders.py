"""File formats → :class:`~indexer.types.Document`.

Scope: plain text (.txt), Markdown (.md, .markdown), reStructuredText (.rst), HTML (.html, .htm), PDF, DOCX and
BEIR corpora (.jsonl, .jsonl.gz, .json). Each reader returns sections that carry their heading path; the caller
chunks them. Anything that goes wrong with a file raises :class:`~indexer.errors.SkipFile` with a reason that a
person can act on; no library exception escapes :func:`read_documents`.

Decisions worth knowing:

- ``Document.path`` is the path relative to the indexed folder, in POSIX form; records of a BEIR file are
  ``"rel/corpus.jsonl#<_id>"`` with ``external_id=_id``.
- Sections are stripped and never empty; ``Section.start`` is the offset in ``Document.text``, which joins the
  sections with a blank line.
- PDF: one section per page with heading path ``("p. 3",)``, so every chunk knows its page.
- BEIR files are all or nothing: a malformed line, a record without ``_id``/``text`` or a duplicate ``_id``
  skips the whole file with a reason naming the line, so a half-indexed corpus never goes unnoticed.
- Folder walks yield supported files only (others are not documents); a single file given directly is yielded
  whatever its suffix, so an unsupported one is reported as skipped rather than silently ignored.
- Text encodings: a BOM wins, then strict UTF-8, then charset-normalizer with near-ties broken towards today's
  common encodings (cp1252 before Mac Roman). NUL bytes without a UTF-16/32 BOM mean binary: skipped.
- Titles: HTML ``<title>`` (else first h1), YAML front matter ``title:`` (else first Markdown H1), the first RST
  section title, DOCX core title (else first Title/Heading paragraph), PDF ``/Title``; else the file stem with
  ``_`` and ``-`` as spaces (always so for .txt). BEIR records keep their own title, possibly empty.

Non-goals: OCR of scanned PDFs, legacy .doc, spreadsheets, e-mail formats, DOCX text boxes/headers/footers.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from indexer.errors import SkipFile
from indexer.types import Document, Section

logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES: frozenset[str] = frozenset(
    {".txt", ".md", ".markdown", ".rst", ".html", ".htm", ".pdf", ".docx", ".json", ".jsonl", ".jsonl.gz"}
)
_HTML_DROP = ("script", "style", "nav", "noscript", "template", "svg", "iframe")
_HTML_HEADINGS = {f"h{i}": i for i in range(1, 7)}
_HTML_BLOCKS = frozenset({
    "p", "div", "section", "article", "main", "header", "footer", "aside", "blockquote", "ul", "ol", "dl", "dt",
    "dd", "table", "thead", "tbody", "tfoot", "figure", "figcaption", "caption", "address", "form", "fieldset",
    "details", "summary", "hr",
})
_RST_ADORNMENT = re.compile(r"^([=\-~`:'\"^_*+#<>.!$%&(),/;?@\[\\\]{|}])\1+\s*$")
_COMMON_ENCODINGS = (  # tie-break order for charset detection, most common first (Python codec names)
    "utf_8", "cp1252", "latin_1", "iso8859_15", "cp1250", "cp1251", "koi8_r", "shift_jis", "cp932", "euc_jp",
    "euc_jis_2004", "euc_jisx0213", "gb18030", "gbk", "gb2312", "big5", "euc_kr", "cp949", "cp1256", "cp1253",
    "cp1254", "cp1255", "cp1257", "iso8859_2", "iso8859_5", "iso8859_6", "iso8859_7", "iso8859_8", "iso8859_9",
    "koi8_u", "cp874", "tis_620",
)
_DOCX_HEADING = re.compile(r"^heading (\d)$", re.IGNORECASE)

Outline = list[tuple[tuple[str, ...], str]]  # (heading path, section text) in document order


# ---------------------------------------------------------------- walking


def file_suffix(path: Path) -> str:
    """The suffix that selects a reader: ``.jsonl.gz`` for compressed BEIR files, else the lower-cased suffix."""
    name = path.name.lower()
    return ".jsonl.gz" if name.endswith(".jsonl.gz") else path.suffix.lower()


def is_supported(path: Path) -> bool:
    return file_suffix(path) in SUPPORTED_SUFFIXES


def iter_files(root: Path) -> Iterator[Path]:
    """Supported files under ``root`` in sorted path order, hidden files and folders skipped.

    Symlinked folders are not followed (no cycles). A single file yields itself, supported or not.
    """
    root = Path(root)
    if not root.is_dir():
        yield root
        return
    found: list[tuple[tuple[str, ...], Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            path = Path(dirpath) / name
            if not name.startswith(".") and is_supported(path) and path.is_file():
                found.append((path.relative_to(root).parts, path))
    for _, path in sorted(found):
        yield path


# ---------------------------------------------------------------- entry point


def read_documents(path: Path, root: Path, max_bytes: int) -> list[Document]:
    """Read one file into documents (one, or one per record for BEIR files).

    Args:
        path: the file.
        root: the folder being indexed (for a single file: its parent); ``Document.path`` is relative to it.
        max_bytes: larger files are skipped.

    Raises:
        SkipFile: with a reason, for any file that cannot be indexed.
    """
    path, root = Path(path), Path(root)
    suffix = file_suffix(path)
    if suffix not in SUPPORTED_SUFFIXES:
        raise SkipFile(f"unsupported file type {suffix or '(no suffix)'!r}; supported: "
                       + ", ".join(sorted(SUPPORTED_SUFFIXES)))
    data = _read_bytes(path, max_bytes)
    rel = _relative(path, root)
    try:
        if suffix == ".jsonl.gz":
            data, suffix = _gunzip(data, max_bytes), ".jsonl"
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
            raise SkipFile(f"file is {_mb(size)}, over the {_mb(max_bytes)} limit (--max-file-mb)")
        return path.read_bytes()
    except PermissionError:
        raise SkipFile("permission denied") from None
    except IsADirectoryError:
        raise SkipFile("is a folder, not a file") from None
    except OSError as e:
        raise SkipFile(f"cannot read file: {e.strerror or e}") from None


def _mb(n_bytes: float) -> str:
    """``851_863_142`` → ``"812.4 MB"``; ``50 << 20`` → ``"50 MB"``; small sizes in bytes."""
    if n_bytes < (1 << 20):
        return f"{int(n_bytes):,} bytes"
    mb = n_bytes / (1 << 20)
    return f"{mb:.1f} MB" if mb != int(mb) else f"{int(mb)} MB"


def _gunzip(data: bytes, max_bytes: int) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
            raw = f.read(max_bytes + 1)
    except (OSError, EOFError) as e:
        raise SkipFile(f"corrupt gzip: {e}") from None
    if len(raw) > max_bytes:
        raise SkipFile(f"decompressed file is over the {_mb(max_bytes)} limit (--max-file-mb)")
    if not raw.strip():
        raise SkipFile("empty file (after decompression)")
    return raw


def _relative(path: Path, root: Path) -> str:
    for p, r in ((path, root), (path.absolute(), root.absolute()), (path.resolve(), root.resolve())):
        try:
            return p.relative_to(r).as_posix()
        except ValueError:
            continue
    return path.name


def stem_title(path: Path | str) -> str:
    """``"my_notes-2024.txt"`` → ``"my notes 2024"``."""
    return " ".join(re.split(r"[\s_-]+", Path(path).stem)).strip() or Path(path).name


def make_document(path: str, title: str, outline: Outline, file_type: str,
                  external_id: str | None = None) -> Document:
    """Strip section texts, drop empty ones, and give each its offset in ``Document.text``."""
    sections, start = [], 0
    for heading_path, text in outline:
        text = text.strip()
        if text:
            sections.append(Section(text=text, heading_path=heading_path, start=start))
            start += len(text) + 2  # the "\n\n" that Document.text puts between sections
    if not sections:
        raise SkipFile("no text (whitespace only)")
    return Document(path=path, title=title.strip(), sections=tuple(sections), file_type=file_type,
                    external_id=external_id)


# ---------------------------------------------------------------- text and encodings


def decode_text(data: bytes) -> str:
    """Bytes → text: BOMs first, then strict UTF-8, then charset-normalizer; newlines normalised to ``\\n``.

    Raises:
        SkipFile: for binary content (NUL bytes without a UTF-16/32 BOM) or bytes no encoding fits.
    """
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"),
                       (b"\x00\x00\xfe\xff", "utf-32"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            try:
                return _normalise_newlines(data.decode(codec))
            except UnicodeDecodeError as e:
                raise SkipFile(f"undecodable text: has a {codec} byte-order mark but {e.reason}") from None
    if b"\x00" in data:
        raise SkipFile("binary content (NUL bytes), not a text file")
    try:
        return _normalise_newlines(data.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = _pick_match(list(from_bytes(data)))
    if best is None:
        raise SkipFile("undecodable text: no encoding fits (binary content?)")
    logger.debug("detected encoding %s", best.encoding)
    return _normalise_newlines(str(best))


def _pick_match(matches: list):
    """charset-normalizer's least chaotic match; among near-ties, a common encoding before a rare one.

    Short Western text is often a tie between cp1252 and Mac or DOS code pages ("Bäcker" → "B‰cker" in
    mac_roman scores as clean as cp1252), so the tie is broken by how common the encoding is today.
    """
    if not matches:
        return None
    least = min(m.chaos for m in matches)
    ties = [m for m in matches if m.chaos <= least + 0.01]
    return min(ties, key=lambda m: _COMMON_ENCODINGS.index(m.encoding)
               if m.encoding in _COMMON_ENCODINGS else len(_COMMON_ENCODINGS))


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "")


def _read_txt(data: bytes, path: Path, rel: str) -> list[Document]:
    return [make_document(rel, stem_title(path), [((), decode_text(data))], "txt")]


# ---------------------------------------------------------------- Markdown


def _split_front_matter(text: str) -> tuple[str, str]:
    """YAML front matter (``---`` ... ``---``) → its ``title:`` value and the rest, with line count preserved."""
    m = re.match(r"---\n(.*?\n)---[ \t]*\n", text, re.DOTALL)
    if not m:
        return "", text
    title = re.search(r"^title:[ \t]*(.+)$", m.group(1), re.MULTILINE)
    blank = "\n" * m.group(0).count("\n")  # keep line numbers so markdown-it's line maps stay valid
    return (title.group(1).strip().strip("'\"") if title else ""), blank + text[m.end():]


def _inline_text(token) -> str:
    parts = [c.content for c in (token.children or []) if c.type in ("text", "code_inline")]
    return re.sub(r"\s+", " ", "".join(parts)).strip() if parts else token.content.strip()


def _read_markdown(data: bytes, path: Path, rel: str) -> list[Document]:
    from markdown_it import MarkdownIt

    meta_title, text = _split_front_matter(decode_text(data))
    lines = text.split("\n")
    tokens = MarkdownIt("commonmark").parse(text)
    headings = []  # (level, text, first line, line after)
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.level == 0 and tok.map:
            headings.append((int(tok.tag[1]), _inline_text(tokens[i + 1]), tok.map[0], tok.map[1]))
    outline: Outline = []
    stack: list[tuple[int, str]] = []
    body_from = 0
    for level, heading, first, after in headings:
        outline.append((tuple(h for _, h in stack), "\n".join(lines[body_from:first])))
        stack = [(lv, h) for lv, h in stack if lv < level] + [(level, heading)]
        body_from = after
    outline.append((tuple(h for _, h in stack), "\n".join(lines[body_from:])))
    h1 = next((h for lv, h, _, _ in headings if lv == 1 and h), "")
    outline = _headings_only_fallback(outline, [h for _, h, _, _ in headings])
    return [make_document(rel, meta_title or h1 or stem_title(path), outline, _file_type(path))]


def _headings_only_fallback(outline: Outline, headings: list[str]) -> Outline:
    """A document of bare headings still has text: the headings themselves."""
    if any(t.strip() for _, t in outline) or not any(headings):
        return outline
    return [((), "\n".join(h for h in headings if h))]


def _file_type(path: Path) -> str:
    return {".markdown": "md", ".htm": "html"}.get(path.suffix.lower(), path.suffix.lower().lstrip("."))


# ---------------------------------------------------------------- reStructuredText


def _rst_title_at(lines: list[str], i: int) -> tuple[str, str, int] | None:
    """If a section title starts at line ``i``: (style key, title, line after), else None."""
    over = _RST_ADORNMENT.match(lines[i])
    if over and i + 2 < len(lines):  # overline + title + underline
        title, under = lines[i + 1].strip(), _RST_ADORNMENT.match(lines[i + 2])
        if title and under and under.group(1) == over.group(1) and not _RST_ADORNMENT.match(lines[i + 1]):
            return "o" + over.group(1), title, i + 3
    if i + 1 < len(lines) and lines[i].strip() and not over and not lines[i].startswith((" ", "\t")):
        under = _RST_ADORNMENT.match(lines[i + 1])
        if under is None or len(lines[i + 1].rstrip()) < min(len(lines[i].rstrip()), 4):
            return None
        if i == 0 or not lines[i - 1].strip():  # a title follows a blank line
            return "u" + under.group(1), lines[i].strip(), i + 2
    return None


def _read_rst(data: bytes, path: Path, rel: str) -> list[Document]:
    lines = decode_text(data).split("\n")
    styles: list[str] = []  # adornment styles in order of first use = section levels (docutils' rule)
    outline: Outline = []
    stack: list[tuple[int, str]] = []
    body: list[str] = []
    titles: list[str] = []
    i = 0
    while i < len(lines):
        found = _rst_title_at(lines, i)
        if found is None:
            body.append(lines[i])
            i += 1
            continue
        style, title, i = found
        if style not in styles:
            styles.append(style)
        level = styles.index(style)
        outline.append((tuple(h for _, h in stack), "\n".join(body)))
        stack = [(lv, h) for lv, h in stack if lv < level] + [(level, title)]
        titles.append(title)
        body = []
    outline.append((tuple(h for _, h in stack), "\n".join(body)))
    outline = _headings_only_fallback(outline, titles)
    return [make_document(rel, titles[0] if titles else stem_title(path), outline, "rst")]


# ---------------------------------------------------------------- HTML


class _HtmlText:
    """Walks an HTML body into sections: headings open sections, blocks become paragraphs, rows become lines."""

    def __init__(self) -> None:
        self.outline: Outline = []
        self.stack: list[tuple[int, str]] = []
        self.blocks: list[str] = []
        self.lines: list[str] = []
        self.inline: list[str] = []

    def end_line(self) -> None:
        line = re.sub(r"\s+", " ", "".join(self.inline)).strip()
        if line:
            self.lines.append(line)
        self.inline = []

    def end_block(self) -> None:
        self.end_line()
        if self.lines:
            self.blocks.append("\n".join(self.lines))
        self.lines = []

    def end_section(self) -> None:
        self.end_block()
        self.outline.append((tuple(h for _, h in self.stack), "\n\n".join(self.blocks)))
        self.blocks = []

    def walk(self, node) -> None:
        from bs4 import NavigableString, Tag

        for child in node.children:
            if isinstance(child, Tag):
                self.visit(child)
            elif type(child) is NavigableString:  # not Comment, Doctype, CData, ...
                self.inline.append(str(child))

    def visit(self, tag) -> None:
        name = tag.name
        if name in _HTML_DROP:
            return
        if name in _HTML_HEADINGS:
            heading = tag.get_text(" ", strip=True)
            if heading:
                self.end_section()
                level = _HTML_HEADINGS[name]
                self.stack = [(lv, h) for lv, h in self.stack if lv < level] + [(level, heading)]
            return
        if name == "br":
            self.end_line()
        elif name == "pre":
            self.end_block()
            self.blocks.append(tag.get_text().strip("\n"))
        elif name == "tr":
            self.end_line()
            cells = [c.get_text(" ", strip=True) for c in tag.find_all(["td", "th"], recursive=False)]
            self.inline.append(" | ".join(c for c in cells if c))
            self.end_line()
        elif name == "li":
            self.end_line()
            self.inline.append("- ")
            self.walk(tag)
            self.end_line()
        elif name in _HTML_BLOCKS:
            self.end_block()
            self.walk(tag)
            self.end_block()
        else:
            self.walk(tag)


def _read_html(data: bytes, path: Path, rel: str) -> list[Document]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(_decode_html(data), "lxml")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    h1 = soup.find("h1")
    walker = _HtmlText()
    walker.walk(soup.body or soup)
    walker.end_section()
    title = title or (h1.get_text(" ", strip=True) if h1 else "") or stem_title(path)
    return [make_document(rel, title, walker.outline, _file_type(path))]


def _decode_html(data: bytes) -> str:
    """A ``<meta charset>`` that decodes the bytes wins over detection (it is the author's word)."""
    m = re.search(rb"""<meta[^>]+charset\s*=\s*["']?([\w.:-]+)""", data[:4096], re.IGNORECASE)
    if m and not data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        try:
            return _normalise_newlines(data.decode(m.group(1).decode("ascii")))
        except (LookupError, UnicodeDecodeError):
            pass
    return decode_text(data)


# ---------------------------------------------------------------- DOCX


def _read_docx(data: bytes, path: Path, rel: str) -> list[Document]:
    import docx
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as e:  # noqa: BLE001 - zipfile, lxml and python-docx errors alike
        raise SkipFile(f"corrupt DOCX: {type(e).__name__}: {e}") from None
    outline: Outline = []
    stack: list[tuple[int, str]] = []
    blocks: list[str] = []
    headings: list[str] = []
    for item in document.iter_inner_content():
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


# ---------------------------------------------------------------- PDF


def _read_pdf(data: bytes, path: Path, rel: str) -> list[Document]:
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
        try:
            text = page.extract_text() or ""
        except Exception as e:  # noqa: BLE001 - one bad page should not lose the others
            logger.warning("%s: page %d: text extraction failed: %s", rel, number, e)
            errors.append(f"page {number}: {e}")
            continue
        outline.append(((f"p. {number}",), _clean_pdf_text(text)))
    if not any(t.strip() for _, t in outline):
        if errors:
            raise SkipFile(f"corrupt PDF: no page could be read ({errors[0]})")
        raise SkipFile(f"scanned PDF? no text layer (no extractable text on {len(outline)} "
                       f"page{'' if len(outline) == 1 else 's'})")
    return [make_document(rel, _pdf_title(reader) or stem_title(path), outline, "pdf")]


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
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text)


# ---------------------------------------------------------------- BEIR corpora


def _beir_documents(records: Iterable[tuple[int, object]], rel: str, what: str) -> list[Document]:
    """``(line or item number, parsed JSON)`` pairs → one Document per record; any bad record skips the file."""
    docs: list[Document] = []
    seen: dict[str, int] = {}
    for number, record in records:
        where = f"{what} {number}"
        if not isinstance(record, dict) or "_id" not in record or "text" not in record:
            got = sorted(record) if isinstance(record, dict) else type(record).__name__
            raise SkipFile(f'{where}: not a BEIR corpus record: expected an object with "_id", "text" '
                           f'(and optional "title"), got {got}')
        doc_id, text, title = record["_id"], record["text"], record.get("title") or ""
        if not isinstance(doc_id, (str, int)) or not isinstance(text, str) or not isinstance(title, str):
            raise SkipFile(f'{where}: "_id" must be a string and "text"/"title" strings')
        doc_id = str(doc_id)
        if doc_id in seen:
            raise SkipFile(f"{where}: duplicate _id {doc_id!r} (first on {what} {seen[doc_id]})")
        seen[doc_id] = number
        body = _normalise_newlines(text).strip() or title.strip()
        if not body:
            logger.debug("%s: %s: record %r has no text; left out", rel, where, doc_id)
            continue
        docs.append(make_document(f"{rel}#{doc_id}", title, [((), body)], "jsonl", external_id=doc_id))
    if not docs:
        raise SkipFile(f"no records with text in this BEIR {'file' if what == 'line' else 'list'}")
    return docs


def _jsonl_records(text: str) -> Iterator[tuple[int, object]]:
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as e:
                raise SkipFile(f"line {number}: invalid JSON: {e.msg} (column {e.colno})") from None


def _read_jsonl(data: bytes, path: Path, rel: str) -> list[Document]:
    return _beir_documents(_jsonl_records(decode_text(data)), rel, "line")


def _read_json(data: bytes, path: Path, rel: str) -> list[Document]:
    try:
        value = json.loads(decode_text(data))
    except json.JSONDecodeError as e:
        raise SkipFile(f"invalid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
        value = [{"_id": k, **v} for k, v in value.items()]  # BEIR's in-memory corpus: {_id: {title, text}}
    if not isinstance(value, list):
        raise SkipFile(f'not a BEIR corpus: expected a list of objects with "_id" and "text", '
                       f"got a JSON {type(value).__name__}")
    return _beir_documents(enumerate(value, start=1), rel, "item")


_READERS = {
    ".txt": _read_txt, ".md": _read_markdown, ".markdown": _read_markdown, ".rst": _read_rst,
    ".html": _read_html, ".htm": _read_html, ".pdf": _read_pdf, ".docx": _read_docx,
    ".jsonl": _read_jsonl, ".json": _read_json,
}
