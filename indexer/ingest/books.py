"""E-books (.epub, EPUB 2 and 3) → one :class:`~indexer.types.Document` (stdlib zipfile + the HTML reader).

The package document (``META-INF/container.xml`` names it) gives the title (``dc:title``, else the file stem)
and the spine: the chapters in reading order. Each chapter is read by
:func:`~indexer.ingest.markup.html_outline` (as XML when it is well-formed XHTML), so its sections carry the
chapter's own headings (``("Chapter 2", "The storm")``); text before a chapter's first heading is placed under the
chapter's ``<title>`` when that differs from the book's. Spine items that are missing or not (X)HTML are passed
over; a book whose chapters are encrypted (DRM; ``META-INF/encryption.xml``, font obfuscation aside) is skipped
with that reason. The zip is checked before anything is parsed, XHTML counted as XML
(:func:`~indexer.ingest.limits.check_zip`), and the package XML is parsed with nothing expanded or fetched.

Non-goals: the navigation document's table of contents as headings, footnote linking, images' alt text beyond
what the HTML reader keeps, fixed-layout and DRM-protected books.
"""

from __future__ import annotations

import io
import logging
import posixpath
import zipfile
from pathlib import Path
from urllib.parse import unquote

from indexer.errors import SkipFile
from indexer.ingest.limits import XML_SUFFIXES, ReadLimits, check_zip, xml_root
from indexer.ingest.markup import html_outline
from indexer.ingest.text import Outline, make_document, stem_title
from indexer.types import Document

logger = logging.getLogger(__name__)


_EPUB_XML = (*XML_SUFFIXES, ".opf", ".ncx", ".xhtml", ".xht", ".html", ".htm")  # what reading an EPUB parses


_CHAPTER_TYPES = frozenset({"application/xhtml+xml", "text/html"})


_FONT_OBFUSCATION = frozenset({"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"})


def _read_epub(data: bytes, path: Path, rel: str, limits: ReadLimits) -> list[Document]:
    check_zip(data, "EPUB", limits.max_unzipped_bytes, limits.max_bytes, xml_suffixes=_EPUB_XML)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        opf_path = _package_path(zf)
        opf = xml_root(_member(zf, opf_path), "EPUB", opf_path)
        title = _first_text(opf, "title")
        chapters = _spine(opf, posixpath.dirname(opf_path))
        if not chapters:
            raise SkipFile(f"EPUB has no (X)HTML chapters in its spine ({opf_path})")
        encrypted = _encrypted(zf) & set(chapters)
        if encrypted:
            raise SkipFile(
                f"EPUB is DRM-protected: {len(encrypted)} chapter(s) encrypted (META-INF/encryption.xml)"
            )
        outline: Outline = []
        for member in chapters:
            limits.deadline.check()
            try:
                raw = zf.read(member)
            except KeyError:
                logger.warning("%s: spine item %s is not in the book; passed over", rel, member)
                continue
            chapter_title, sections = html_outline(raw, limits.deadline, xml=True)
            under = (chapter_title,) if chapter_title and chapter_title != title else ()
            outline += [(heading or under, text) for heading, text in sections]
    return [make_document(rel, title or stem_title(path), outline, "epub")]


def _member(zf: zipfile.ZipFile, name: str) -> bytes:
    try:
        return zf.read(name)
    except KeyError:
        raise SkipFile(f"corrupt EPUB: {name} is missing") from None


def _package_path(zf: zipfile.ZipFile) -> str:
    """The package document (.opf) that ``META-INF/container.xml`` names, else the only .opf in the zip."""
    names = zf.namelist()
    if "META-INF/container.xml" in names:
        container = xml_root(zf.read("META-INF/container.xml"), "EPUB", "META-INF/container.xml")
        for el in container.iter():
            if _local(el) == "rootfile" and el.get("full-path"):
                return unquote(el.get("full-path"))
    opfs = [n for n in names if n.lower().endswith(".opf")]
    if len(opfs) == 1:
        return opfs[0]
    raise SkipFile("corrupt EPUB: no package document (META-INF/container.xml names no .opf)")


def _spine(opf, base: str) -> list[str]:
    """The zip members of the spine's (X)HTML chapters, in reading order, each once."""
    manifest: dict[str, tuple[str, str]] = {}
    spine: list[str] = []
    for el in opf.iter():
        name = _local(el)
        if name == "item" and el.get("id") and el.get("href"):
            manifest[el.get("id")] = (_resolve(base, el.get("href")), el.get("media-type", ""))
        elif name == "itemref" and el.get("idref"):
            spine.append(el.get("idref"))
    members = [manifest[i][0] for i in spine if i in manifest and manifest[i][1] in _CHAPTER_TYPES]
    return list(dict.fromkeys(members))


def _encrypted(zf: zipfile.ZipFile) -> set[str]:
    """Members encrypted by something other than font obfuscation (paths in encryption.xml are from the root)."""
    if "META-INF/encryption.xml" not in zf.namelist():
        return set()
    root = xml_root(zf.read("META-INF/encryption.xml"), "EPUB", "META-INF/encryption.xml")
    out: set[str] = set()
    for data in (el for el in root.iter() if _local(el) == "EncryptedData"):
        method = next((e.get("Algorithm", "") for e in data.iter() if _local(e) == "EncryptionMethod"), "")
        uris = [e.get("URI", "") for e in data.iter() if _local(e) == "CipherReference"]
        if method not in _FONT_OBFUSCATION:
            out.update(_resolve("", u) for u in uris if u)
    return out


def _first_text(root, local: str) -> str:
    for el in root.iter():
        if _local(el) == local:
            text = " ".join("".join(el.itertext()).split())
            if text:
                return text
    return ""


def _resolve(base: str, href: str) -> str:
    """``("OEBPS", "text/ch%201.xhtml#s2")`` → ``"OEBPS/text/ch 1.xhtml"``: a zip member name."""
    return posixpath.normpath(posixpath.join(base, unquote(href.split("#", 1)[0]))).lstrip("/")


def _local(el) -> str:
    """An element's name without its namespace; comments and processing instructions have none."""
    tag = el.tag
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""
