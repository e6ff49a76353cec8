"""Bytes → text, and the pieces every reader shares: decoding, newline clean-up, titles, the Document maker.

Text encodings: a BOM wins, then strict UTF-8, then UTF-8 with replacement when only a few stray bytes break it
(a file that is UTF-8 but for them must not turn into cp1250 mojibake), then charset-normalizer with near-ties
broken towards today's common encodings (cp1252 before Mac Roman). NUL bytes without a UTF-16/32 BOM mean
binary: skipped. A title falls back to the file stem with ``_`` and ``-`` as spaces.

Lone surrogates (a file name that is not UTF-8 comes out of ``os.fsdecode`` with them, and JSON's ``"\\udc00"``
escapes make them too) can be neither stored by SQLite nor tokenized: :func:`make_document` replaces them in
titles and text (:func:`clean_text`) and escapes them in paths and ids (:func:`storable_path`).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from indexer.errors import SkipFile
from indexer.types import Document, Section

logger = logging.getLogger(__name__)


_COMMON_ENCODINGS = (  # tie-break order for charset detection, most common first (Python codec names)
    "utf_8",
    "cp1252",
    "latin_1",
    "iso8859_15",
    "cp1250",
    "cp1251",
    "koi8_r",
    "shift_jis",
    "cp932",
    "euc_jp",
    "euc_jis_2004",
    "euc_jisx0213",
    "gb18030",
    "gbk",
    "gb2312",
    "big5",
    "euc_kr",
    "cp949",
    "cp1256",
    "cp1253",
    "cp1254",
    "cp1255",
    "cp1257",
    "iso8859_2",
    "iso8859_5",
    "iso8859_6",
    "iso8859_7",
    "iso8859_8",
    "iso8859_9",
    "koi8_u",
    "cp874",
    "tis_620",
)


Outline = list[tuple[tuple[str, ...], str]]  # (heading path, section text) in document order


_SURROGATE = re.compile("[\ud800-\udfff]")


_NEAR_UTF8_MAX_BAD = 0.01  # stray bytes, as a share of the characters, that UTF-8 with replacement tolerates


def clean_text(text: str) -> str:
    """Lone surrogates → U+FFFD, for text that is shown and tokenized (titles, sections): the name
    ``b"caf\\xe9"`` (Latin-1), which ``os.fsdecode`` makes ``"caf\\udce9"``, is titled ``"caf\ufffd"``."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def storable_path(text: str) -> str:
    """Lone surrogates → backslash escapes, for paths and ids: the same name always gives the same key, and two
    names that differ in their undecodable bytes keep different keys: ``os.fsdecode(b"caf\\xe9.txt")`` is
    stored as ``caf\\xe9.txt`` (a backslash, then ``xe9``)."""
    if not _SURROGATE.search(text):
        return text
    return _SURROGATE.sub(lambda m: _escape_surrogate(ord(m.group())), text)


def _escape_surrogate(code: int) -> str:
    # os.fsdecode maps an undecodable byte b to U+DC00 + b (PEP 383): give the byte back
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def stem_title(path: Path | str) -> str:
    """``"my_notes-2024.txt"`` → ``"my notes 2024"``; undecodable bytes of the name become U+FFFD."""
    name = clean_text(Path(path).name)
    return " ".join(re.split(r"[\s_-]+", Path(name).stem)).strip() or name


def make_document(
    path: str, title: str, outline: Outline, file_type: str, external_id: str | None = None
) -> Document:
    """Strip section texts, drop empty ones, and give each its offset in ``Document.text``."""
    sections, start = [], 0
    for heading_path, text in outline:
        text = clean_text(text.strip())
        if text:
            headings = tuple(clean_text(h) for h in heading_path)
            sections.append(Section(text=text, heading_path=headings, start=start))
            start += len(text) + 2  # the "\n\n" that Document.text puts between sections
    if not sections:
        raise SkipFile("no text (whitespace only)")
    return Document(
        path=storable_path(path),
        title=clean_text(title.strip()),
        sections=tuple(sections),
        file_type=file_type,
        external_id=None if external_id is None else storable_path(external_id),
    )


def decode_text(data: bytes) -> str:
    """Bytes → text: BOMs first, then strict UTF-8, then UTF-8 with a few stray bytes replaced, then
    charset-normalizer; newlines normalised to ``\\n``.

    Raises:
        SkipFile: for binary content (NUL bytes without a UTF-16/32 BOM) or bytes no encoding fits.
    """
    for bom, codec in (
        (b"\xef\xbb\xbf", "utf-8-sig"),
        (b"\xff\xfe\x00\x00", "utf-32"),
        (b"\x00\x00\xfe\xff", "utf-32"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    ):
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
    nearly = _nearly_utf8(data)
    if nearly is not None:
        return _normalise_newlines(nearly)
    from charset_normalizer import from_bytes

    best = _pick_match(list(from_bytes(data)))
    if best is None:
        raise SkipFile("undecodable text: no encoding fits (binary content?)")
    logger.debug("detected encoding %s", best.encoding)
    return _normalise_newlines(str(best))


def _nearly_utf8(data: bytes) -> str | None:
    """The text as UTF-8 with U+FFFD for its stray bytes, if it is UTF-8 but for them; else None.

    UTF-8 but for them means: the invalid sequences are under 1 % of the characters, and valid multi-byte
    sequences outnumber them (text in a legacy 8-bit code page almost never forms valid UTF-8 sequences, so a
    cp1252 "café" still goes to detection).
    """
    text = data.decode("utf-8", "replace")
    replaced = text.count("\ufffd")
    bad = replaced - data.count("\ufffd".encode())
    if bad > _NEAR_UTF8_MAX_BAD * len(text):
        return None
    multibyte = len(text) - len(text.encode("ascii", "ignore")) - replaced
    if multibyte > bad:
        logger.debug("UTF-8 with %d stray byte sequence(s) replaced", bad)
        return text
    return None


def _pick_match(matches: list):
    """charset-normalizer's least chaotic match; among near-ties, a common encoding before a rare one.

    Short Western text is often a tie between cp1252 and Mac or DOS code pages ("Bäcker" → "B‰cker" in
    mac_roman scores as clean as cp1252), so the tie is broken by how common the encoding is today.
    """
    if not matches:
        return None
    least = min(m.chaos for m in matches)
    ties = [m for m in matches if m.chaos <= least + 0.01]
    return min(
        ties,
        key=lambda m: (
            _COMMON_ENCODINGS.index(m.encoding) if m.encoding in _COMMON_ENCODINGS else len(_COMMON_ENCODINGS)
        ),
    )


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "")


def _headings_only_fallback(outline: Outline, headings: list[str]) -> Outline:
    """A document of bare headings still has text: the headings themselves."""
    if any(t.strip() for _, t in outline) or not any(headings):
        return outline
    return [((), "\n".join(h for h in headings if h))]


def _file_type(path: Path) -> str:
    return {".markdown": "md", ".htm": "html", ".xhtml": "html", ".xht": "html"}.get(
        path.suffix.lower(), path.suffix.lower().lstrip(".")
    )


class OutlineBuilder:
    """Collects a document's outline from headings and blocks in reading order: a heading of level ``n`` closes
    the open headings of level ``n`` and deeper and opens a section; blocks become that section's paragraphs.

    >>> b = OutlineBuilder(); b.heading(1, "Intro"); b.block("Hello."); b.heading(2, "More"); b.block("Bye.")
    >>> b.finish()
    [((), ''), (('Intro',), 'Hello.'), (('Intro', 'More'), 'Bye.')]
    """

    def __init__(self) -> None:
        self.outline: Outline = []
        self.headings: list[str] = []
        self._stack: list[tuple[int, str]] = []
        self._blocks: list[str] = []

    def heading(self, level: int, text: str) -> None:
        text = re.sub(r"\s+", " ", text).strip()
        if not text:
            return
        self._close()
        self._stack = [(lv, h) for lv, h in self._stack if lv < level] + [(level, text)]
        self.headings.append(text)

    def block(self, text: str) -> None:
        if text.strip():
            self._blocks.append(text.strip())

    def _close(self) -> None:
        self.outline.append((tuple(h for _, h in self._stack), "\n\n".join(self._blocks)))
        self._blocks = []

    def finish(self) -> Outline:
        """The outline; a document of bare headings keeps the headings as its text."""
        self._close()
        return _headings_only_fallback(self.outline, self.headings)
