"""Readers of PPTX, XLSX, EPUB, ODT, e-mail (.eml, .mbox) and XHTML, on files made here (tmp_path), and their
hostile variants (zip bombs, empty, truncated, encrypted): each is skipped with a reason, never a crash."""

from __future__ import annotations

import datetime as dt
import io
import time
import warnings
import zipfile
from email.message import EmailMessage
from pathlib import Path

import pytest

from indexer.build.job import build_index
from indexer.errors import SkipFile
from indexer.ingest.loaders import SUPPORTED_SUFFIXES, read_documents
from indexer.search.index import Index
from indexer.types import Document
from tests.fakes import FakeEncoder
from tests.indexer.test_loaders import check_offsets

MB = 1 << 20


def read(tmp_path: Path, name: str, data: bytes) -> list[Document]:
    (tmp_path / name).write_bytes(data)
    return read_documents(tmp_path / name, tmp_path, 10 * MB)


def skip_reason(tmp_path: Path, name: str, data: bytes) -> str:
    with pytest.raises(SkipFile) as exc:
        read(tmp_path, name, data)
    return exc.value.reason


def zipped(members: dict[str, str | bytes], stored_first: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        if stored_first:  # EPUB and ODF: an uncompressed "mimetype" member first
            z.writestr(zipfile.ZipInfo("mimetype"), stored_first, compress_type=zipfile.ZIP_STORED)
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


# ---------------------------------------------------------------- PPTX


def pptx_bytes() -> bytes:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    deck.core_properties.title = ""
    s1 = deck.slides.add_slide(deck.slide_layouts[1])  # title and content
    s1.shapes.title.text = "Фотосинтез"
    s1.placeholders[1].text_frame.text = "Растения превращают свет в сахар."
    s2 = deck.slides.add_slide(deck.slide_layouts[5])  # title only
    s2.shapes.title.text = "緑茶"
    table = s2.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(4), Inches(1)).table
    for (r, c), text in {(0, 0): "茶", (0, 1): "産地", (1, 0): "煎茶", (1, 1): "静岡"}.items():
        table.cell(r, c).text = text
    s2.notes_slide.notes_text_frame.text = "Speaker notes: mention the harvest in May."
    s3 = deck.slides.add_slide(deck.slide_layouts[6])  # blank: no title
    group = s3.shapes.add_group_shape()
    group.shapes.add_textbox(Inches(1), Inches(1), Inches(3), Inches(1)).text_frame.text = "النص في مجموعة"
    deck.slides.add_slide(deck.slide_layouts[6])  # an empty slide is left out
    buf = io.BytesIO()
    deck.save(buf)
    return buf.getvalue()


def test_pptx_one_section_per_slide_with_titles_tables_notes_and_groups(tmp_path: Path):
    (doc,) = read(tmp_path, "deck.pptx", pptx_bytes())
    assert (doc.title, doc.file_type) == ("Фотосинтез", "pptx")
    assert [s.heading_path for s in doc.sections] == [
        ("slide 1", "Фотосинтез"),
        ("slide 2", "緑茶"),
        ("slide 3",),
    ]
    assert doc.sections[0].text == "Растения превращают свет в сахар."
    assert doc.sections[1].text == "茶 | 産地\n煎茶 | 静岡\n\nSpeaker notes: mention the harvest in May."
    assert doc.sections[2].text == "النص في مجموعة"
    check_offsets(doc)


# ---------------------------------------------------------------- XLSX


def xlsx_bytes(rows_per_sheet: int = 3) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    staff = book.active
    staff.title = "Staff"
    staff.append(["Name", "City", "Joined", None, "Score"])
    people = [("Анна", "Москва"), ("王芳", "北京"), ("Zoé", "Lyon")]
    for i in range(rows_per_sheet):
        name, city = people[i % 3]
        staff.append([name, city, dt.datetime(2021, 3, 4), "note" if i == 0 else None, 7.0 + i])
    numbers = book.create_sheet("Numbers")
    numbers.append([1, 2.5, True])
    numbers.append(["x", None, "y"])
    book.create_sheet("Empty")
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def test_xlsx_sheet_sections_and_header_value_rows(tmp_path: Path):
    (doc,) = read(tmp_path, "book.xlsx", xlsx_bytes())
    assert (doc.title, doc.file_type) == ("book", "xlsx")
    assert [s.heading_path for s in doc.sections] == [("Staff",), ("Numbers",)]
    assert doc.sections[0].text.split("\n") == [
        "Name: Анна; City: Москва; Joined: 2021-03-04; D: note; Score: 7",
        "Name: 王芳; City: 北京; Joined: 2021-03-04; Score: 8",
        "Name: Zoé; City: Lyon; Joined: 2021-03-04; Score: 9",
    ]
    assert doc.sections[1].text == "1 | 2.5 | TRUE\nx | y"  # numbers first: no header
    check_offsets(doc)


def test_xlsx_rows_and_cells_are_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import indexer.ingest.limits as limits

    monkeypatch.setattr(limits, "MAX_SHEET_ROWS", 5)
    (doc,) = read(tmp_path, "big.xlsx", xlsx_bytes(rows_per_sheet=50))
    assert len(doc.sections[0].text.split("\n")) == 5
    monkeypatch.setattr(limits, "MAX_WORKBOOK_CELLS", 12)  # the header and two rows of Staff
    (doc,) = read(tmp_path, "big.xlsx", xlsx_bytes(rows_per_sheet=50))
    assert [s.heading_path for s in doc.sections] == [("Staff",)]
    assert len(doc.sections[0].text.split("\n")) == 1


def test_xlsx_forged_dimensions_do_not_pad_rows(tmp_path: Path):
    data = xlsx_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    sheet = members["xl/worksheets/sheet1.xml"].decode()
    assert '<dimension ref="A1:E4"/>' in sheet
    members["xl/worksheets/sheet1.xml"] = sheet.replace("A1:E4", "A1:XFD1048576").encode()
    t0 = time.perf_counter()
    (doc,) = read(tmp_path, "forged.xlsx", zipped(members))
    assert time.perf_counter() - t0 < 10  # padded, it would build a million rows of 16,384 cells
    assert doc.sections[0].text.startswith("Name: Анна")


# ---------------------------------------------------------------- EPUB

_CONTAINER = (
    '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
    '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
    "</rootfiles></container>"
)


def chapter(title: str, body: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE html>\n'
        f'<html xmlns="http://www.w3.org/1999/xhtml"><head><title>{title}</title></head><body>{body}</body></html>'
    )


def epub_bytes(spine: list[str], chapters: dict[str, str], extra: dict[str, str] | None = None) -> bytes:
    items = "".join(
        f'<item id="{n}" href="{n.replace(" ", "%20")}" media-type="application/xhtml+xml"/>'
        for n in chapters
    )
    items += '<item id="css" href="style.css" media-type="text/css"/><item id="gone" href="gone.xhtml" '
    items += 'media-type="application/xhtml+xml"/>'
    refs = "".join(f'<itemref idref="{i}"/>' for i in spine)
    opf = (
        '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">'
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Путешествие</dc:title></metadata>'
        f"<manifest>{items}</manifest><spine>{refs}</spine></package>"
    )
    members = {"META-INF/container.xml": _CONTAINER, "OEBPS/content.opf": opf, "OEBPS/style.css": "p {}"}
    members |= {f"OEBPS/{n}": text for n, text in chapters.items()}
    return zipped(members | (extra or {}), stored_first="application/epub+zip")


CHAPTERS = {
    "ch 1.xhtml": chapter(
        "Глава 1", "<h1>Глава 1</h1><p>Поезд ушёл&#160;рано.</p><h2>Ночь</h2><p>Звёзды.</p>"
    ),
    "ch2.xhtml": chapter("Путешествие", "<p>Без заголовка&nbsp;вовсе.</p>"),  # &nbsp;: not XML, read as HTML
    "ch3.xhtml": chapter("Эпилог", "<div/><p>Конец.</p>"),
}


def test_epub_spine_order_title_and_chapter_headings(tmp_path: Path):
    data = epub_bytes(["ch3.xhtml", "ch 1.xhtml", "gone", "css", "ch2.xhtml"], CHAPTERS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no XMLParsedAsHTMLWarning, for any chapter
        (doc,) = read(tmp_path, "book.epub", data)
    assert (doc.title, doc.file_type) == ("Путешествие", "epub")
    assert [(s.heading_path, s.text) for s in doc.sections] == [
        (("Эпилог",), "Конец."),  # spine order, not manifest order; <title> when there is no heading
        (("Глава 1",), "Поезд ушёл рано."),
        (("Глава 1", "Ночь"), "Звёзды."),
        ((), "Без заголовка вовсе."),  # its <title> is the book's: not repeated
    ]
    check_offsets(doc)


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        (
            {"META-INF/container.xml": _CONTAINER.replace("content.opf", "gone.opf")},
            "corrupt EPUB: OEBPS/gone.opf is missing",
        ),
        ({"OEBPS/content.opf": "<package><manifest>"}, "corrupt EPUB: OEBPS/content.opf: "),
        (
            {
                "META-INF/encryption.xml": '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
                'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
                '<enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/><enc:CipherData>'
                '<enc:CipherReference URI="OEBPS/ch3.xhtml"/></enc:CipherData></enc:EncryptedData></encryption>'
            },
            "EPUB is DRM-protected: 1 chapter(s) encrypted",
        ),
    ],
)
def test_epub_broken_or_protected_is_skipped(tmp_path: Path, extra: dict[str, str], reason: str):
    assert skip_reason(tmp_path, "b.epub", epub_bytes(["ch3.xhtml"], CHAPTERS, extra)).startswith(reason)


def test_epub_with_no_chapters_or_no_package(tmp_path: Path):
    reason = skip_reason(tmp_path, "b.epub", epub_bytes(["css"], CHAPTERS))
    assert reason.startswith("EPUB has no (X)HTML chapters in its spine")
    no_opf = zipped({"META-INF/container.xml": "<container><rootfiles/></container>", "a.xhtml": "<p/>"})
    assert skip_reason(tmp_path, "b.epub", no_opf).startswith("corrupt EPUB: no package document")


# ---------------------------------------------------------------- XHTML


@pytest.mark.parametrize(
    ("name", "page"),
    [
        ("a.xhtml", chapter("T", "<h1>H</h1><p>x</p>")),
        ("b.html", '<?xml version="1.0"?><html><body><h1>H</h1><p>x</p></body>'),  # not well-formed: HTML
        (
            "c.xhtml",
            '<?xml version="1.0"?><h:html xmlns:h="http://www.w3.org/1999/xhtml"><h:p>x</h:p></h:html>',
        ),
        ("d.xhtml", '<?xml version="1.0" encoding="iso-8859-1"?><html><body><p>caf\xe9 x</p></body></html>'),
    ],
)
def test_xhtml_without_the_parser_warning(tmp_path: Path, name: str, page: str):
    data = page.encode("latin-1" if "iso-8859-1" in page else "utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (doc,) = read(tmp_path, name, data)
    assert doc.file_type == "html" and doc.text.endswith("x")
    if name == "d.xhtml":
        assert doc.text == "café x"


def test_xhtml_self_closing_title_and_script_lose_no_text(tmp_path: Path):
    page = chapter("", "<h1>Kapitel</h1><p>Erster Absatz.</p>").replace(
        "<title></title>", "<title/><script/>"
    )
    (doc,) = read(tmp_path, "s.xhtml", page.encode())
    assert (doc.title, doc.text, doc.sections[0].heading_path) == ("Kapitel", "Erster Absatz.", ("Kapitel",))


# ---------------------------------------------------------------- ODT

_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:dc="http://purl.org/dc/elements/1.1/"'
)


def odt_bytes(body: str, title: str = "Отчёт", manifest: str = "<manifest/>") -> bytes:
    content = f'<?xml version="1.0"?><office:document-content {_NS}><office:body><office:text>{body}'
    content += "</office:text></office:body></office:document-content>"
    meta = f"<office:document-meta {_NS}><office:meta><dc:title>{title}</dc:title></office:meta></office:document-meta>"
    members = {"content.xml": content, "meta.xml": meta, "META-INF/manifest.xml": manifest}
    return zipped(members, stored_first="application/vnd.oasis.opendocument.text")


ODT_BODY = (
    '<text:h text:outline-level="1">Введение</text:h>'
    '<text:p>Первый<text:s text:c="2"/>абзац.<text:note><text:note-body><text:p>Сноска.</text:p>'
    "</text:note-body></text:note></text:p>"
    '<text:h text:outline-level="2">Детали</text:h>'
    "<text:list><text:list-item><text:p>пункт<text:tab/>один</text:p></text:list-item></text:list>"
    "<text:p>строка<text:line-break/>вторая<office:annotation><text:p>комментарий</text:p></office:annotation></text:p>"
    '<text:h text:outline-level="1">Итог</text:h><table:table><table:table-row><table:table-cell>'
    "<text:p>ячейка</text:p></table:table-cell></table:table-row></table:table>"
    '<text:p>пробелы<text:s text:c="1000000000"/>конец</text:p>'
)


def test_odt_headings_paragraphs_notes_and_title(tmp_path: Path):
    (doc,) = read(tmp_path, "r.odt", odt_bytes(ODT_BODY))
    assert (doc.title, doc.file_type) == ("Отчёт", "odt")
    assert [(s.heading_path, s.text) for s in doc.sections] == [
        (("Введение",), "Первый  абзац.\n\nСноска."),
        (("Введение", "Детали"), "пункт\tодин\n\nстрока\nвторая"),
        (("Итог",), "ячейка\n\nпробелы" + " " * 64 + "конец"),
    ]
    check_offsets(doc)
    (doc,) = read(tmp_path, "r.odt", odt_bytes(ODT_BODY, title=""))
    assert doc.title == "Введение"


def test_odt_password_protected(tmp_path: Path):
    manifest = "<manifest><file-entry><encryption-data/></file-entry></manifest>"
    reason = skip_reason(tmp_path, "p.odt", odt_bytes(ODT_BODY, manifest=manifest))
    assert reason.startswith("ODT is password-protected")


# ---------------------------------------------------------------- e-mail


def message(subject: str, body: str = "", html: str = "", attach: str = "") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Анна Петрова <anna@example.org>"
    msg["To"] = "wang@example.cn"
    msg["Date"] = "Tue, 04 Mar 2025 10:00:00 +0000"
    if subject:
        msg["Subject"] = subject
    if body:
        msg.set_content(body)
    if html:
        msg.add_alternative(html, subtype="html") if body else msg.set_content(html, subtype="html")
    if attach:
        msg.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename=attach)
    return msg


def test_eml_headers_first_then_plain_text_preferred(tmp_path: Path):
    msg = message("Встреча в четверг", "Давайте встретимся в 10 утра.\n", "<p>HTML version</p>", "план.pdf")
    (doc,) = read(tmp_path, "m.eml", msg.as_bytes())
    assert (doc.title, doc.file_type, doc.external_id) == ("Встреча в четверг", "eml", None)
    assert doc.sections[0].text == (
        "From: Анна Петрова <anna@example.org>\nTo: wang@example.cn\nDate: Tue, 04 Mar 2025 10:00:00 +0000\n"
        "Attachments: план.pdf"
    )
    assert doc.sections[1].text == "Давайте встретимся в 10 утра."
    check_offsets(doc)


def test_eml_html_only_goes_through_the_html_reader(tmp_path: Path):
    html = "<html><body><h2>日程</h2><p>会议在周四。</p><script>x()</script></body></html>"
    (doc,) = read(tmp_path, "Re_ plan.eml", message("", html=html).as_bytes())
    assert doc.title == "Re plan"  # no subject: the file stem
    assert [(s.heading_path, s.text) for s in doc.sections[1:]] == [(("日程",), "会议在周四。")]


def test_eml_unknown_charset_and_bad_input(tmp_path: Path):
    raw = b"From: a@b.c\nSubject: =?x-unknown?q?Hi?=\nContent-Type: text/plain; charset=x-unknown\n\nHallo Welt\n"
    (doc,) = read(tmp_path, "u.eml", raw)
    assert doc.text.endswith("Hallo Welt")
    assert skip_reason(tmp_path, "n.eml", b"just some text\nwithout headers\n").startswith(
        "not an e-mail message"
    )


def mbox_bytes() -> bytes:
    parts = []
    for i, (subject, body) in enumerate(
        [("Первое письмо", "Текст про вулканы.\n"), ("", ""), ("第三封信", "From here on, walruses.\n")]
    ):
        raw = message(subject, body).as_bytes() if subject else b"\n"
        raw = raw.replace(b"\nFrom here", b"\n>From here")  # mboxrd escape of a body line
        parts.append(f"From sender{i}@example.org Tue Mar  4 10:00:00 2025\n".encode() + raw + b"\n")
    return b"".join(parts)


def test_mbox_one_document_per_message_with_record_paths(tmp_path: Path):
    (tmp_path / "mail").mkdir()
    docs = read(tmp_path, "mail/box.mbox", mbox_bytes())
    assert [(d.path, d.title, d.file_type, d.external_id) for d in docs] == [
        ("mail/box.mbox#1", "Первое письмо", "mbox", None),
        ("mail/box.mbox#3", "第三封信", "mbox", None),  # message 2 has no text at all: left out
    ]
    assert docs[1].sections[-1].text == "From here on, walruses."
    assert skip_reason(tmp_path, "x.mbox", b"Subject: hi\n\nno From_ line\n").startswith("not an mbox")


# ---------------------------------------------------------------- hostile variants of every zip format

ZIP_FORMATS = {"pptx": "PPTX", "xlsx": "XLSX", "odt": "ODT", "epub": "EPUB"}


def good_bytes(suffix: str) -> bytes:
    return {
        "pptx": pptx_bytes,
        "xlsx": xlsx_bytes,
        "odt": lambda: odt_bytes(ODT_BODY),
        "epub": lambda: epub_bytes(["ch 1.xhtml"], CHAPTERS),
    }[suffix]()


def with_bomb(data: bytes) -> bytes:
    """The document with a ~3 MB member of one repeated line added (compresses ~300:1)."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        members: dict[str, str | bytes] = {n: z.read(n) for n in z.namelist() if n != "mimetype"}
    members["docProps/bomb.xml"] = "<a>" + "All work and no play makes Jack a dull boy. " * 70_000 + "</a>"
    return zipped(members)


@pytest.mark.parametrize("suffix", sorted(ZIP_FORMATS))
def test_zip_formats_hostile_variants_are_skipped_with_reasons(tmp_path: Path, suffix: str):
    fmt, good = ZIP_FORMATS[suffix], good_bytes(suffix)
    assert read(tmp_path, f"ok.{suffix}", good)  # the fixture itself reads
    assert "zip bomb" in skip_reason(tmp_path, f"bomb.{suffix}", with_bomb(good))
    assert skip_reason(tmp_path, f"empty.{suffix}", b"") == "empty file"
    assert skip_reason(tmp_path, f"cut.{suffix}", good[: len(good) // 2]).startswith(f"corrupt {fmt}: ")
    assert skip_reason(tmp_path, f"text.{suffix}", b"not a zip at all").startswith(f"corrupt {fmt}: ")
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600
    assert "password-protected" in skip_reason(tmp_path, f"locked.{suffix}", ole)
    junk = zipped({"[Content_Types].xml": "<Types/>", "mimetype": "x"})  # a valid zip of nothing useful
    assert skip_reason(tmp_path, f"junk.{suffix}", junk)


def test_a_folder_of_every_format_indexes_and_searches(tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    files = {
        "deck.pptx": pptx_bytes(),
        "book.xlsx": xlsx_bytes(),
        "roman.epub": epub_bytes(["ch 1.xhtml", "ch3.xhtml"], CHAPTERS),
        "report.odt": odt_bytes(ODT_BODY),
        "note.eml": message("Volcano trip", "We climb Etna at dawn.").as_bytes(),
        "box.mbox": mbox_bytes(),
        "page.xhtml": chapter("Glaciers", "<h1>Glaciers</h1><p>Ice carves fjords.</p>").encode(),
        "box.mbox#1.txt": b"Could be mistaken for a message of box.mbox.",
        "bomb.pptx": with_bomb(pptx_bytes()),
        "empty.epub": b"",
        "cut.odt": odt_bytes(ODT_BODY)[:200],
    }
    for name, data in files.items():
        (docs / name).write_bytes(data)
    encoder = FakeEncoder()
    summary = build_index(docs, tmp_path / "idx", encoder=encoder)
    reasons = {s["path"]: s["reason"] for s in summary.skipped}
    assert set(reasons) == {"box.mbox#1.txt", "bomb.pptx", "empty.epub", "cut.odt"}
    assert reasons["box.mbox#1.txt"].startswith("its path could be a record of box.mbox")
    assert summary.added == 7
    index = Index.open(tmp_path / "idx", encoder=encoder)
    for query, expected in [
        ("Etna dawn", "note.eml"),
        ("walruses", "box.mbox#3"),
        ("静岡 煎茶", "deck.pptx"),
        ("Lyon Zoé", "book.xlsx"),
        ("Звёзды", "roman.epub"),
        ("ячейка", "report.odt"),
        ("fjords", "page.xhtml"),
    ]:
        hits = index.search(query, mode="bm25", k=3).hits
        assert hits and hits[0].doc_path == expected, (query, [h.doc_path for h in hits])


def test_every_supported_suffix_has_a_reader():
    from indexer.ingest.loaders import _READERS, _READERS_WITH_LIMITS

    assert SUPPORTED_SUFFIXES - {".jsonl.gz"} == set(_READERS) | set(_READERS_WITH_LIMITS)
