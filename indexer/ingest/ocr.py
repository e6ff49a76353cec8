"""OCR for PDF pages that have no text layer (scans): render the page, read it with Tesseract.

Pages are rendered with pypdfium2 (PDFium, the engine in Chrome, as self-contained wheels: no system package,
permissive licence, actively released) and read by the ``tesseract`` program through pytesseract, in every
language whose traineddata is installed (``tesseract --list-langs``, less ``osd``). Both Python packages come with
``pip install 'e5search[ocr]'``; the program with ``apt-get install tesseract-ocr`` (plus ``tesseract-ocr-deu`` etc.
per language). OCR'd text is marked: the reader gives such a page the heading path ``("p. 3", "OCR")``.

Setting (``IndexConfig.ocr``, ``--ocr`` / ``--no-ocr``): ``None`` = on when Tesseract and the extra are installed,
``True`` = required (an error naming the install steps if they are missing), ``False`` = off. Each page's
Tesseract call gets the file's remaining time budget (:class:`~indexer.ingest.limits.Deadline`) as its timeout.
Non-goals: OCR of images inside pages that do have text, layout analysis, image files (.png/.tiff) as documents.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import math
import shutil
from collections.abc import Iterable, Iterator

from indexer.errors import ConfigError
from indexer.ingest.limits import Deadline, OverBudget

logger = logging.getLogger(__name__)

OCR_MARK = "OCR"  # the heading after the page heading on every OCR'd page: ("p. 3", "OCR")
DPI = 300  # Tesseract's recommended resolution for body text
MAX_PIXELS = 40_000_000  # a poster-sized page is rendered smaller rather than allocating gigabytes
INSTALL = (
    "apt-get install tesseract-ocr (and tesseract-ocr-<lang> per language) and pip install 'e5search[ocr]'"
)


def missing() -> str | None:
    """What is missing for OCR (``None`` when it can run)."""
    if shutil.which("tesseract") is None:
        return "the tesseract program is not installed"
    for package in ("pytesseract", "pypdfium2"):
        if importlib.util.find_spec(package) is None:
            return f"the Python package {package} is not installed"
    return None


def check_available() -> None:
    """Raises ConfigError naming the install steps when OCR was asked for and cannot run."""
    why = missing()
    if why is not None:
        raise ConfigError(f"--ocr: {why}; {INSTALL}, or index with --no-ocr")


def wanted(setting: bool | None) -> bool:
    """Whether to OCR: ``None`` = when it can run, ``True`` = yes (ConfigError if it cannot), ``False`` = no."""
    if setting is None:
        return missing() is None
    if setting:
        check_available()
    return bool(setting)


@functools.lru_cache(maxsize=1)
def languages() -> str:
    """Tesseract's ``-l`` argument: every installed language but orientation detection, e.g. ``"deu+eng+rus"``."""
    import pytesseract

    langs = sorted(set(pytesseract.get_languages(config="")) - {"osd", "equ"})
    return "+".join(langs) or "eng"


def ocr_pdf_pages(data: bytes, numbers: Iterable[int], deadline: Deadline) -> Iterator[tuple[int, str]]:
    """``(page number, text)`` for each 1-based page number, read by Tesseract from the rendered page.

    Raises:
        OverBudget: when the file's time budget runs out (also during a Tesseract call).
    """
    import pypdfium2

    pdf = pypdfium2.PdfDocument(data)
    try:
        for number in numbers:
            deadline.check()
            page = pdf[number - 1]
            try:
                image = _render(page)
            finally:
                page.close()
            yield number, _read_image(image, deadline)
    finally:
        pdf.close()


def _render(page):
    """The page as a greyscale PIL image at :data:`DPI`, scaled down to :data:`MAX_PIXELS` for huge pages."""
    width, height = page.get_size()  # points, 1/72 inch
    scale = min(DPI / 72, math.sqrt(MAX_PIXELS / max(width * height, 1.0)))
    bitmap = page.render(scale=scale, grayscale=True)
    try:
        return bitmap.to_pil()
    finally:
        bitmap.close()


def _read_image(image, deadline: Deadline) -> str:
    import pytesseract

    remaining = deadline.remaining()
    try:
        # timeout 0 means none to pytesseract: an unlimited budget passes 0
        return pytesseract.image_to_string(
            image, lang=languages(), timeout=0 if remaining is None else remaining
        )
    except RuntimeError as exc:
        if "timeout" in str(exc).lower():
            raise OverBudget(
                f"OCR took over {deadline.seconds:g} s (file_timeout_s per MB): "
                "raise file_timeout_s, or index with --no-ocr"
            ) from None
        raise
