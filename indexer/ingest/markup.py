"""Readers of text formats with markup: plain text, Markdown (with YAML front matter), reStructuredText, HTML.

Each returns one :class:`~indexer.types.Document` whose sections carry their heading path. XHTML (and HTML that opens
with an XML declaration) is parsed as XML when it is well-formed (:func:`html_outline`). Titles: HTML
``<title>`` (else the first h1), front matter ``title:`` (else the first Markdown H1), the first RST section title;
plain text always takes the file stem.
"""

from __future__ import annotations

import re
from pathlib import Path

from indexer.ingest.limits import Deadline, ReadLimits
from indexer.ingest.text import (
    Outline,
    _file_type,
    _headings_only_fallback,
    _normalise_newlines,
    decode_text,
    make_document,
    stem_title,
)
from indexer.types import Document

_HTML_DROP = ("script", "style", "nav", "noscript", "template", "svg", "iframe")


_HTML_HEADINGS = {f"h{i}": i for i in range(1, 7)}


_HTML_BLOCKS = frozenset(
    {
        "p",
        "div",
        "section",
        "article",
        "main",
        "header",
        "footer",
        "aside",
        "blockquote",
        "ul",
        "ol",
        "dl",
        "dt",
        "dd",
        "table",
        "thead",
        "tbody",
        "tfoot",
        "figure",
        "figcaption",
        "caption",
        "address",
        "form",
        "fieldset",
        "details",
        "summary",
        "hr",
    }
)


_RST_ADORNMENT = re.compile(r"^([=\-~`:'\"^_*+#<>.!$%&(),/;?@\[\\\]{|}])\1+\s*$")


def _read_txt(data: bytes, path: Path, rel: str) -> list[Document]:
    return [make_document(rel, stem_title(path), [((), decode_text(data))], "txt")]


def _split_front_matter(text: str) -> tuple[str, str]:
    """YAML front matter (``---`` ... ``---``) → its ``title:`` value and the rest, with line count preserved."""
    m = re.match(r"---\n(.*?\n)---[ \t]*\n", text, re.DOTALL)
    if not m:
        return "", text
    title = re.search(r"^title:[ \t]*(.+)$", m.group(1), re.MULTILINE)
    blank = "\n" * m.group(0).count("\n")  # keep line numbers so markdown-it's line maps stay valid
    return (title.group(1).strip().strip("'\"") if title else ""), blank + text[m.end() :]


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


def _read_rst(data: bytes, path: Path, rel: str, limits: ReadLimits) -> list[Document]:
    lines = decode_text(data).split("\n")
    styles: list[str] = []  # adornment styles in order of first use = section levels (docutils' rule)
    outline: Outline = []
    stack: list[tuple[int, str]] = []
    body: list[str] = []
    titles: list[str] = []
    i = 0
    while i < len(lines):
        if i % 1000 == 0:
            limits.deadline.check()
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


class _HtmlText:
    """Walks an HTML body into sections: headings open sections, blocks become paragraphs, rows become lines."""

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline
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
        self.deadline.check()
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


def _read_html(data: bytes, path: Path, rel: str, limits: ReadLimits) -> list[Document]:
    xml = path.suffix.lower() in (".xhtml", ".xht")
    title, outline = html_outline(data, limits.deadline, xml=xml)
    return [make_document(rel, title or stem_title(path), outline, _file_type(path))]


def html_outline(data: bytes | str, deadline: Deadline, xml: bool = False) -> tuple[str, Outline]:
    """An HTML or XHTML page → (its ``<title>``, else first h1, else ``""``; its outline). Text already
    decoded (an e-mail's HTML part) is parsed as HTML as it is.

    A page that is XHTML (``xml``, or it opens with an XML declaration) is parsed as XML when it is well-formed and
    uses no entity XML does not define, so ``<title/>`` and ``<div/>`` mean what they say; otherwise, like a
    browser would, as HTML, with the declaration taken out (its encoding kept), so BeautifulSoup does not warn
    that XML is being parsed as HTML.
    """
    if isinstance(data, str):
        from bs4 import BeautifulSoup

        soup = BeautifulSoup(re.sub(r"^\s*<\?xml[^>]*>", "", data), "lxml")
    else:
        soup = _soup(data, xml or _XML_DECLARATION.match(data) is not None)
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    h1 = soup.find("h1")
    deadline.check()
    walker = _HtmlText(deadline)
    walker.walk(soup.body or soup)
    walker.end_section()
    return title or (h1.get_text(" ", strip=True) if h1 else ""), walker.outline


_XML_DECLARATION = re.compile(rb"^(?:\xef\xbb\xbf)?\s*<\?xml\s")


_NOT_XML_ENTITY = re.compile(rb"&(?!(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);)|<!ENTITY", re.IGNORECASE)


def _soup(data: bytes, xml: bool):
    from bs4 import BeautifulSoup

    if xml and _NOT_XML_ENTITY.search(data) is None and _well_formed(data):
        return BeautifulSoup(data, "xml")  # lxml reads the declared encoding
    text = _decode_html(data)
    if xml:
        text = re.sub(r"^\s*<\?xml[^>]*>", "", text)
    return BeautifulSoup(text, "lxml")


def _well_formed(data: bytes) -> bool:
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        etree.fromstring(data, parser)
    except etree.XMLSyntaxError:
        return False
    return True


def _decode_html(data: bytes) -> str:
    """A ``<meta charset>`` or XML declaration that decodes the bytes wins over detection (the author's word)."""
    m = re.search(
        rb"""<meta[^>]+charset\s*=\s*["']?([\w.:-]+)|^\s*<\?xml[^>]+encoding\s*=\s*["']([\w.:-]+)""",
        data[:4096],
        re.IGNORECASE,
    )
    if m and not data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        try:
            return _normalise_newlines(data.decode((m.group(1) or m.group(2)).decode("ascii")))
        except (LookupError, UnicodeDecodeError):
            pass
    return decode_text(data)
