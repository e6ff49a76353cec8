"""Scanned PDFs: pages without a text layer are OCR'd with Tesseract, found by their words, marked ``OCR``.

The scans are generated here: text in Latin (English, German) and Cyrillic script drawn with Pillow and saved as
an image-only PDF. Tesseract is a real program: without it (or the ``ocr`` extra) the tests that need it skip
with the reason; the refusal of ``--ocr`` without it is tested by hiding it from PATH.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from e5search.cli import main
from indexer.build.job import build_index
from indexer.config import IndexConfig
from indexer.ingest import ocr
from indexer.search.index import Index
from tests.fakes import FakeEncoder
from tests.fixtures.make_fixtures import pdf_bytes

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
PAGES = [
    ["Glaciers carve deep valleys", "Die Gletscher schmelzen im Sommer"],
    ["Volcanoes erupt molten basalt", "Вулканы извергают раскалённую лаву"],
]
needs_ocr = pytest.mark.skipif(ocr.missing() is not None, reason=f"OCR cannot run: {ocr.missing()}")


def scanned_pdf(path: Path, pages: list[list[str]]) -> Path:
    """An image-only PDF (no text layer): each page a 150 dpi A4 greyscale picture of its lines."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(FONT), 36) if FONT.exists() else ImageFont.load_default(36)
    images = []
    for lines in pages:
        image = Image.new("L", (1240, 1754), 255)
        draw = ImageDraw.Draw(image)
        for n, line in enumerate(lines):
            draw.text((120, 200 + 90 * n), line, fill=0, font=font)
        images.append(image)
    images[0].save(path, "PDF", resolution=150, save_all=True, append_images=images[1:])
    return path


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts Tesseract calls (the real ones still run)."""
    calls: list[int] = []
    real = ocr._read_image

    def counting(image, deadline):
        calls.append(1)
        return real(image, deadline)

    monkeypatch.setattr(ocr, "_read_image", counting)
    return calls


@needs_ocr
def test_scanned_pdf_is_searchable_with_page_and_mark(tmp_path: Path, counted: list[int]):
    docs = tmp_path / "docs"
    docs.mkdir()
    scanned_pdf(docs / "scan.pdf", PAGES)
    summary = build_index(docs, tmp_path / "idx", IndexConfig(ocr=True), encoder=FakeEncoder())
    assert summary.skipped == [] and summary.added == 1 and len(counted) == 2
    index = Index.open(tmp_path / "idx", encoder=FakeEncoder())
    for word, page in (("Gletscher", 1), ("valleys", 1), ("basalt", 2)):
        hit = index.search(word, mode="bm25", k=1).hits[0]
        assert (hit.doc_path, hit.page, hit.heading_path) == ("scan.pdf", page, (f"p. {page}", ocr.OCR_MARK))
        assert word in hit.text
    if "rus" in ocr.languages().split("+"):
        hit = index.search("Вулканы", mode="bm25", k=1).hits[0]
        assert hit.page == 2 and "Вулканы" in hit.text


@needs_ocr
def test_text_layer_pages_are_not_ocrd(tmp_path: Path, counted: list[int]):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "text.pdf").write_bytes(pdf_bytes([["Moraines mark the glacier's furthest advance"], []]))
    (docs / "drawing.pdf").write_bytes(pdf_bytes([[]]))  # a grey square: no text layer, no text to read
    summary = build_index(docs, tmp_path / "idx", IndexConfig(ocr=True), encoder=FakeEncoder())
    assert summary.added == 1 and len(counted) == 2  # only the two drawn pages without text went to Tesseract
    assert [s["reason"] for s in summary.skipped] == [
        "scanned PDF? no text layer (no extractable text on 1 page); OCR read no text either"
    ]
    hit = Index.open(tmp_path / "idx", encoder=FakeEncoder()).search("moraines", mode="bm25", k=1).hits[0]
    assert hit.heading_path == ("p. 1",)  # text-layer pages keep their plain page heading


@needs_ocr
def test_ocr_stays_within_the_file_time_budget(tmp_path: Path, counted: list[int]):
    docs = tmp_path / "docs"
    docs.mkdir()
    scanned_pdf(docs / "scan.pdf", PAGES * 3)
    config = IndexConfig(ocr=True, file_timeout_s=0.3)  # the file is < 1 MB: 0.3 s for all of it
    summary = build_index(docs, tmp_path / "idx", config, encoder=FakeEncoder())
    assert len(summary.skipped) == 1 and "took over 0.3 s" in summary.skipped[0]["reason"]
    assert len(counted) < 6  # Tesseract was stopped: not every page was read


@needs_ocr
def test_no_ocr_skips_scans_with_the_reason(tmp_path: Path, counted: list[int], capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    scanned_pdf(docs / "scan.pdf", PAGES[:1])
    assert main(["index", str(docs), "--index", str(tmp_path / "idx"), "--no-ocr", "--json", "--quiet"]) == 0
    skipped = json.loads(capsys.readouterr().out)["skipped"]
    assert counted == [] and len(skipped) == 1 and "OCR is off: index with --ocr" in skipped[0]["reason"]


def test_ocr_without_tesseract_is_one_line_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("nothing scanned here", encoding="utf-8")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no tesseract on PATH
    assert main(["index", str(docs), "--index", str(tmp_path / "idx"), "--ocr"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "apt-get install tesseract-ocr" in err and "pip install 'e5search[ocr]'" in err
    assert not (tmp_path / "idx").exists()
    assert ocr.wanted(None) is False  # the default is off, silently, without it
