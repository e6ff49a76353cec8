"""What one file may cost before it is skipped: how far a zip-based format may expand, and how long reading and
chunking may take.

Both guards raise :class:`~indexer.errors.SkipFile` with a reason, so one hostile file costs seconds and a line
in the run summary, never the run. :func:`check_zip` runs before every zip-based format (DOCX, PPTX, XLSX, ODT,
EPUB) is parsed, from the sizes the zip declares: :mod:`zipfile` never returns more
than a member's declared size (it stops there and fails the CRC check), so the declared sizes bound what the
parser can be handed. :class:`Deadline` is checked between steps (pages, paragraphs, records, chunks), so no
thread is left running a file that was given up on; a single step (one parser call) is not interrupted, which
is why the zip caps exist at all. XML that a reader parses itself goes through :func:`xml_root`: no entities
expanded, no DTD loaded, nothing fetched. Spreadsheets are cut at :data:`MAX_SHEET_ROWS` rows per sheet and
:data:`MAX_WORKBOOK_CELLS` cells per workbook (the rest is left out with a warning in the log).

Non-goals: limits on PDF content streams (pypdf caps its own decompression), hard CPU or memory limits.
"""

from __future__ import annotations

import io
import math
import time
import zipfile
from dataclasses import dataclass, field

from indexer.errors import SkipFile

MAX_ZIP_RATIO = 100  # Apache POI's zip-bomb threshold (ZipSecureFile: minimum inflate ratio 0.01)


RATIO_MIN_BYTES = 1 << 20  # smaller members are never refused for their ratio: short XML compresses well


MAX_XML_ELEMENTS = 2_000_000  # ~100k paragraphs of heavily formatted text; python-docx needs ~30 s for that


DEFAULT_MAX_UNZIPPED_BYTES = 40 << 20  # IndexConfig.max_unzipped_mb's default, for callers without a config


MAX_SHEET_ROWS = 20_000  # rows with text per spreadsheet sheet; a bigger table is data, not a document


MAX_WORKBOOK_CELLS = 500_000  # non-empty cells per workbook (~10 MB of text: hours of CPU encoding)


XML_SUFFIXES = (".xml", ".rels")  # the members Office formats parse; EPUB adds its XHTML, OPF and NCX


_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # a Compound File: legacy .doc/.xls/.ppt, or encrypted OOXML


class OverBudget(SkipFile):
    """A file's time budget ran out: skipped this run, tried again by the next (it may be a slow machine)."""


class Deadline:
    """The time budget of one file, started at construction; ``None`` seconds means no limit.

    >>> Deadline(None).check()  # never raises
    """

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self._end = math.inf if seconds is None else time.monotonic() + seconds

    def check(self) -> None:
        """Raises SkipFile once the budget is spent."""
        if time.monotonic() > self._end:
            raise OverBudget(
                f"reading and chunking took over {self.seconds:g} s (file_timeout_s per MB): "
                "a pathological file, or raise file_timeout_s"
            )

    def remaining(self) -> float | None:
        """Seconds left (at least a millisecond, for a subprocess timeout); ``None`` without a limit."""
        return None if self.seconds is None else max(self._end - time.monotonic(), 1e-3)


@dataclass(frozen=True)
class ReadLimits:
    """What reading one file may cost; readers that unzip or loop over pages and records take it."""

    max_bytes: int  # the file itself (max_file_mb); also what a zip's non-XML members may expand to
    max_unzipped_bytes: int = DEFAULT_MAX_UNZIPPED_BYTES  # the XML a zip may expand to (max_unzipped_mb)
    deadline: Deadline = field(default_factory=lambda: Deadline(None))
    # OCR PDF pages without a text layer (None: when Tesseract is installed; indexer.ingest.ocr)
    ocr: bool | None = False


def check_zip(
    data: bytes,
    fmt: str,
    max_xml_bytes: int,
    max_other_bytes: int,
    xml_suffixes: tuple[str, ...] = XML_SUFFIXES,
) -> None:
    """Refuse a zip-based document that would expand beyond what reading it can afford.

    Args:
        data: the file's bytes (a zip archive).
        fmt: the format's name for reasons, e.g. ``"DOCX"``.
        max_xml_bytes: the most XML (members named ``*{xml_suffixes}``) it may expand to; XML is what gets parsed.
        max_other_bytes: the most everything else (images, fonts, embedded files) may expand to.
        xml_suffixes: the members the reader parses as XML (lower case).

    Raises:
        SkipFile: for a corrupt zip, too much XML or too much else, a member compressed more than
            :data:`MAX_ZIP_RATIO` to 1, or more than :data:`MAX_XML_ELEMENTS` XML elements.
    """
    if data.startswith(_OLE_MAGIC):
        raise SkipFile(
            f"not a {fmt} zip but a Compound File: a password-protected {fmt}, or a legacy binary Office file "
            "renamed; save it unprotected (or as a current format) to index it"
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = zf.infolist()
            xml = [m for m in members if m.filename.lower().endswith(xml_suffixes)]
            _check_sizes(fmt, members, xml, max_xml_bytes, max_other_bytes)
            _check_elements(fmt, zf, xml)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError) as e:
        raise SkipFile(f"corrupt {fmt}: {type(e).__name__}: {e}") from None


def _check_sizes(
    fmt: str,
    members: list[zipfile.ZipInfo],
    xml: list[zipfile.ZipInfo],
    max_xml_bytes: int,
    max_other_bytes: int,
) -> None:
    xml_bytes = sum(m.file_size for m in xml)
    if xml_bytes > max_xml_bytes:
        raise SkipFile(
            f"{fmt} expands to {size_text(xml_bytes)} of XML (limit {size_text(max_xml_bytes)}, max_unzipped_mb): "
            "a zip bomb or a huge document"
        )
    other_bytes = sum(m.file_size for m in members) - xml_bytes
    if other_bytes > max_other_bytes:
        raise SkipFile(
            f"{fmt} expands to {size_text(other_bytes)} besides its XML (limit {size_text(max_other_bytes)}, "
            "max_file_mb): a zip bomb or a huge document"
        )
    for m in members:
        ratio = m.file_size / max(m.compress_size, 1)
        if m.file_size >= RATIO_MIN_BYTES and ratio > MAX_ZIP_RATIO:
            raise SkipFile(
                f"{fmt} member {m.filename} expands {ratio:.0f} times, to {size_text(m.file_size)} "
                f"(limit {MAX_ZIP_RATIO} times): a zip bomb"
            )


def _check_elements(fmt: str, zf: zipfile.ZipFile, xml: list[zipfile.ZipInfo]) -> None:
    """Count start tags (``<`` not followed by ``/``) in a streaming pass, before any tree is built."""
    elements = 0
    for member in xml:
        with zf.open(member) as f:
            while block := f.read(1 << 20):
                elements += block.count(b"<") - block.count(b"</")
                if elements > MAX_XML_ELEMENTS:
                    raise SkipFile(
                        f"{fmt} holds over {MAX_XML_ELEMENTS:,} XML elements: a zip bomb or a huge document"
                    )


def xml_root(data: bytes, fmt: str, member: str):
    """The root element of one XML member, parsed with nothing expanded or fetched (an entity stays a reference,
    a DTD is not loaded), so a crafted member costs no more than its size.

    Raises:
        SkipFile: naming the format and member when the XML is not well-formed.
    """
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as e:
        raise SkipFile(f"corrupt {fmt}: {member}: {e}") from None
    if root is None:
        raise SkipFile(f"corrupt {fmt}: {member} is empty")
    return root


def size_text(n_bytes: float) -> str:
    """``851_863_142`` → ``"812.4 MB"``; ``50 << 20`` → ``"50 MB"``; small sizes in bytes."""
    if n_bytes < (1 << 20):
        return f"{int(n_bytes):,} bytes"
    mb = n_bytes / (1 << 20)
    return f"{mb:.1f} MB" if mb != int(mb) else f"{int(mb)} MB"
