"""OpenDocument text (.odt) → one :class:`~indexer.types.Document` (stdlib zipfile + lxml on ``content.xml``).

Headings are ``text:h`` elements at their ``text:outline-level``; every ``text:p`` (in lists, tables, frames and
sections too) is a paragraph, in document order. A footnote's text follows the paragraph that cites it;
comments (``office:annotation``) and deleted text kept by change tracking are left out. ``text:s``, ``text:tab``
and ``text:line-break`` become spaces, tabs and newlines. The title is ``dc:title`` from ``meta.xml``, else the
first heading, else the file stem. The zip is checked before parsing
(:func:`~indexer.ingest.limits.check_zip`) and its XML parsed with nothing expanded or fetched; a
password-protected ODT is skipped with that reason.

Non-goals: .ods/.odp, flat XML (.fodt), headers and footers, tracked insertions shown as such.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from indexer.errors import SkipFile
from indexer.ingest.limits import ReadLimits, check_zip, xml_root
from indexer.ingest.text import OutlineBuilder, make_document, stem_title
from indexer.types import Document

_TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"


_OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"


_DC_TITLE = "{http://purl.org/dc/elements/1.1/}title"


_LEFT_OUT = frozenset({f"{_OFFICE}annotation", f"{_TEXT}tracked-changes"})  # and everything inside them


_INLINE_SKIP = frozenset({f"{_TEXT}note", f"{_OFFICE}annotation"})  # their paragraphs are read on their own


_MAX_SPACES = 64  # text:s c="1000000000" must not become a gigabyte of spaces


def _read_odt(data: bytes, path: Path, rel: str, limits: ReadLimits) -> list[Document]:
    check_zip(data, "ODT", limits.max_unzipped_bytes, limits.max_bytes)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = set(zf.namelist())
        if "META-INF/manifest.xml" in names and b"encryption-data" in zf.read("META-INF/manifest.xml"):
            raise SkipFile("ODT is password-protected (encrypted): save it without a password to index it")
        if "content.xml" not in names:
            raise SkipFile("corrupt ODT: no content.xml")
        content = xml_root(zf.read("content.xml"), "ODT", "content.xml")
        meta = xml_root(zf.read("meta.xml"), "ODT", "meta.xml") if "meta.xml" in names else None
    body = content.find(f"{_OFFICE}body/{_OFFICE}text")
    builder = OutlineBuilder()
    for n, el in enumerate((body if body is not None else content).iter(f"{_TEXT}h", f"{_TEXT}p")):
        if n % 500 == 0:
            limits.deadline.check()
        if any(a.tag in _LEFT_OUT for a in el.iterancestors()):
            continue
        if el.tag == f"{_TEXT}h":
            builder.heading(_level(el.get(f"{_TEXT}outline-level")), _inline_text(el))
        else:
            builder.block(_inline_text(el))
    title = _meta_title(meta) or next(iter(builder.headings), "") or stem_title(path)
    return [make_document(rel, title, builder.finish(), "odt")]


def _level(value: str | None) -> int:
    try:
        return min(max(int(value or 1), 1), 10)
    except ValueError:
        return 1


def _inline_text(para) -> str:
    """A paragraph's own text: spans followed, notes and comments inside it passed over (without recursion)."""
    from lxml import etree

    out: list[str] = []
    skipping = None
    for event, el in etree.iterwalk(para, events=("start", "end")):
        if skipping is not None:
            if event == "end" and el is skipping:
                skipping = None
                out.append(el.tail or "")
            continue
        if event == "start":
            if not isinstance(el.tag, str):  # a comment or an unexpanded entity: its tail only
                continue
            if el is not para and el.tag in _INLINE_SKIP:
                skipping = el
                continue
            out.append(_special(el))
            out.append(el.text or "")
        elif el is not para:
            out.append(el.tail or "")
    return "".join(out)


def _special(el) -> str:
    if el.tag == f"{_TEXT}s":
        try:
            return " " * min(max(int(el.get(f"{_TEXT}c", "1")), 1), _MAX_SPACES)
        except ValueError:
            return " "
    return {f"{_TEXT}tab": "\t", f"{_TEXT}line-break": "\n"}.get(el.tag, "")


def _meta_title(meta) -> str:
    if meta is None:
        return ""
    el = meta.find(f".//{_DC_TITLE}")
    return " ".join("".join(el.itertext()).split()) if el is not None else ""
