"""OCR for PDF pages that have no text layer (scans): render the page, read it with Tesseract.

Pages are rendered with pypdfium2 (PDFium, the engine in Chrome, as self-contained wheels: no system package,
permissive licence, actively released; ``pip install 'e5search[ocr]'``) and read by the ``tesseract`` program
(``apt-get install tesseract-ocr``, plus ``tesseract-ocr-deu`` etc. per language) in every language whose
traineddata is installed (``tesseract --list-langs``, less ``osd``). The page goes to ``tesseract stdin stdout``
as a PNG on one OpenMP thread unless ``OMP_THREAD_LIMIT`` says otherwise: Tesseract's own threads spin when the
cores are busy (``bench/ocr.py``: 10.1 s a page on one thread, 226.5 s on two, on 2 loaded cores). The program is
run directly because pytesseract hands it this process's environment (the limit would apply to the whole
process). OCR'd text is marked: the reader gives such a page the heading path ``("p. 3", "OCR")``.

Setting (``IndexConfig.ocr``, ``--ocr`` / ``--no-ocr``): ``None`` = on when Tesseract and the extra are installed,
``True`` = required (an error naming the install steps if they are missing), ``False`` = off. Each page's
Tesseract call gets the file's remaining time budget (:class:`~indexer.ingest.limits.Deadline`) as its timeout.
Non-goals: OCR of images inside pages that do have text, layout analysis, image files (.png/.tiff) as documents.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import logging
import math
import os
import shutil
import subprocess
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
IGNORED_LANGS = frozenset({"osd", "equ"})  # orientation/script detection and maths: not languages of text


def missing() -> str | None:
    """What is missing for OCR (``None`` when it can run)."""
    if shutil.which("tesseract") is None:
        return "the tesseract program is not installed"
    for package in ("pypdfium2", "PIL"):
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
    listed = subprocess.run(
        ["tesseract", "--list-langs"], capture_output=True, text=True, timeout=60, check=True
    ).stdout.splitlines()[1:]  # the first line names the tessdata folder
    return "+".join(sorted({line.strip() for line in listed if line.strip()} - IGNORED_LANGS)) or "eng"


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
                png = _render(page)
            finally:
                page.close()
            yield number, _read_image(png, deadline)
    finally:
        pdf.close()


def _render(page) -> bytes:
    """The page as a greyscale PNG at :data:`DPI` (scaled down to :data:`MAX_PIXELS` for huge pages)."""
    width, height = page.get_size()  # points, 1/72 inch
    scale = min(DPI / 72, math.sqrt(MAX_PIXELS / max(width * height, 1.0)))
    bitmap = page.render(scale=scale, grayscale=True)
    try:
        png = io.BytesIO()
        bitmap.to_pil().save(png, "PNG", dpi=(round(72 * scale),) * 2)  # Tesseract sizes text by the dpi
        return png.getvalue()
    finally:
        bitmap.close()


def _read_image(png: bytes, deadline: Deadline) -> str:
    """Tesseract's text for one PNG page, within what is left of the file's time budget."""
    env = {**os.environ, "OMP_THREAD_LIMIT": os.environ.get("OMP_THREAD_LIMIT", "1")}
    command = ["tesseract", "stdin", "stdout", "-l", languages()]
    try:
        done = subprocess.run(command, input=png, capture_output=True, env=env, timeout=deadline.remaining())
    except subprocess.TimeoutExpired:  # subprocess.run has killed the child
        raise OverBudget(
            f"OCR took over {deadline.seconds:g} s (file_timeout_s per MB): "
            "raise file_timeout_s, or index with --no-ocr"
        ) from None
    if done.returncode != 0:
        last = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
        raise RuntimeError(f"tesseract failed: {last[0] if last else f'exit {done.returncode}'}")
    return done.stdout.decode("utf-8", "replace")
