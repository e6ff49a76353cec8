"""File formats → Documents: titles, sections, heading paths, encodings, and a reason for every bad file."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from indexer.errors import SkipFile
from indexer.ingest.loaders import SUPPORTED_SUFFIXES, is_supported, iter_files, read_documents
from indexer.ingest.text import decode_text, stem_title
from indexer.types import Document

FIXTURES = Path(__file__).parent.parent / "fixtures"
DOCS, BAD = FIXTURES / "docs", FIXTURES / "bad"
MB = 1 << 20


def read_one(name: str) -> Document:
    docs = read_documents(DOCS / name, DOCS, max_bytes=10 * MB)
    assert len(docs) == 1
    return docs[0]


def check_offsets(doc: Document) -> None:
    text = doc.text
    for s in doc.sections:
        assert s.text and s.text == s.text.strip()
        assert text[s.start : s.start + len(s.text)] == s.text


def test_iter_files_walks_sorted_supported_and_not_hidden(tmp_path: Path):
    for rel in ["b.md", "a/z.txt", "a/y.html", ".hidden.txt", ".git/config.txt", "notes.xyz", "c.jsonl.gz"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    assert [p.relative_to(tmp_path).as_posix() for p in iter_files(tmp_path)] == [
        "a/y.html",
        "a/z.txt",
        "b.md",
        "c.jsonl.gz",
    ]
    single = tmp_path / "notes.xyz"
    assert list(iter_files(single)) == [single]  # a file named directly is yielded, so its skip is reported


def test_supported_suffixes():
    assert {".txt", ".md", ".html", ".pdf", ".docx", ".jsonl", ".json", ".rst"} <= SUPPORTED_SUFFIXES
    assert is_supported(Path("A/B.MD")) and is_supported(Path("corpus.jsonl.gz"))
    assert not is_supported(Path("photo.png")) and not is_supported(Path("x.gz"))


def test_stem_title():
    assert stem_title("my_notes-2024.txt") == "my notes 2024"


def test_markdown_headings_atx_and_setext():
    doc = read_one("en_photosynthesis.md")
    assert (doc.path, doc.title, doc.file_type) == ("en_photosynthesis.md", "Photosynthesis", "md")
    assert [s.heading_path for s in doc.sections] == [
        ("Photosynthesis",),
        ("Photosynthesis", "Light reactions"),
        ("Photosynthesis", "Light reactions", "Chlorophyll"),
        ("Photosynthesis", "Calvin cycle"),  # Setext H2 closes the H3 and the H2 before it
    ]
    assert doc.sections[2].text.startswith("Chlorophyll absorbs red and blue light")
    assert "- Output: glucose" in doc.sections[3].text  # body kept as written
    assert "##" not in doc.text and "------------" not in doc.text
    check_offsets(doc)


def test_markdown_front_matter_title(tmp_path: Path):
    (tmp_path / "n.md").write_text("---\ntitle: 'From YAML'\ntags: [a]\n---\n# Heading\n\nBody.\n")
    (doc,) = read_documents(tmp_path / "n.md", tmp_path, MB)
    assert doc.title == "From YAML"
    assert doc.sections[0].heading_path == ("Heading",) and doc.text == "Body."


def test_markdown_of_headings_only_keeps_them(tmp_path: Path):
    (tmp_path / "h.md").write_text("# One\n## Two\n")
    (doc,) = read_documents(tmp_path / "h.md", tmp_path, MB)
    assert doc.text == "One\nTwo"


def test_html_drops_script_style_nav_and_builds_heading_path():
    doc = read_one("fr_fromage.html")
    assert (doc.title, doc.file_type) == ("Les fromages de France", "html")
    text = doc.text
    for dropped in ("ne-pas-indexer", "encore un script", "font-family", "Menu de navigation"):
        assert dropped not in text
    paths = [s.heading_path for s in doc.sections]
    assert paths == [
        ("Les fromages de France",),
        ("Les fromages de France", "Le camembert"),
        ("Les fromages de France", "Le roquefort"),
        ("Les fromages de France", "Le roquefort", "Accords"),
    ]
    assert "fromage bleu au lait de brebis" in doc.sections[2].text  # inline <b> joined into the paragraph
    assert "- Lait : brebis\n- Région : Occitanie" in doc.sections[2].text
    assert doc.sections[3].text == "Fromage | Vin\nRoquefort | Sauternes"
    check_offsets(doc)


def test_html_meta_charset_and_title_fallback(tmp_path: Path):
    html = '<html><head><meta charset="windows-1251"></head><body><h1>Волга</h1><p>Река.</p></body></html>'
    (tmp_path / "v.htm").write_bytes(html.encode("cp1251"))
    (doc,) = read_documents(tmp_path / "v.htm", tmp_path, MB)
    assert (doc.title, doc.text, doc.file_type) == ("Волга", "Река.", "html")


def test_docx_styles_build_heading_path_and_tables():
    doc = read_one("zh_tea.docx")
    assert (doc.title, doc.file_type) == ("中国茶", "docx")
    assert [s.heading_path for s in doc.sections] == [
        ("中国茶",),
        ("中国茶", "绿茶"),
        ("中国茶", "绿茶", "泡茶的方法"),
        ("中国茶", "乌龙茶"),
    ]
    assert doc.sections[1].text.startswith("龙井茶产自杭州西湖附近")
    assert doc.sections[3].text.endswith("茶 | 产地\n铁观音 | 福建安溪")
    check_offsets(doc)


def test_rst_section_titles():
    doc = read_one("ru_volga.rst")
    assert doc.title == "Волга и Транссиб"
    assert [s.heading_path for s in doc.sections] == [
        ("Волга и Транссиб",),
        ("Волга и Транссиб", "Города на Волге"),
        ("Волга и Транссиб", "Транссибирская магистраль"),
        ("Волга и Транссиб", "Транссибирская магистраль", "Поезд"),
    ]
    assert "=====" not in doc.text and "-----" not in doc.text
    check_offsets(doc)


def test_pdf_one_section_per_page_with_metadata_title():
    doc = read_one("en_glaciers.pdf")
    assert (doc.title, doc.file_type) == ("Glaciers and Ice Ages", "pdf")
    assert [s.heading_path for s in doc.sections] == [("p. 1",), ("p. 2",)]
    assert "carve U-shaped valleys" in doc.sections[0].text
    assert doc.sections[1].text.startswith("During the last ice age")
    check_offsets(doc)


def test_txt_is_one_section_titled_by_file_stem():
    doc = read_one("de_rhein_brot.txt")
    assert (doc.title, doc.file_type, len(doc.sections)) == ("de rhein brot", "txt", 1)
    assert doc.sections[0].heading_path == ()
    assert "\n\nIn den Dörfern am Rhein" in doc.text  # paragraphs kept


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("es_paella_latin1.txt", "¿El secreto? El socarrat"),
        ("ar_dates_utf16.txt", "يحصد المزارعون التمر"),
        ("ja_fuji_shiftjis.txt", "東海道新幹線の窓から"),
    ],
)
def test_fixture_encodings(name: str, needle: str):
    doc = read_one(name)
    assert needle in doc.text and "\ufeff" not in doc.text and "\r" not in doc.text


@pytest.mark.parametrize(
    ("codec", "text"),
    [
        ("utf-8-sig", "Käse mit BOM"),
        ("utf-16-le", "\ufeffLittle endian текст"),
        ("utf-16-be", "\ufeffBig endian 文字"),
        ("cp1252", "Le café crème coûte deux € à Paris — c’est « très » cher, n’est-ce pas ?"),
        ("latin-1", "Der Bäcker backt Brötchen und Brezeln für die Straße."),
        ("koi8_r", "Транссибирская магистраль соединяет Москву и Владивосток. Поезд идёт почти семь суток."),
        ("cp1251", "Волга — самая длинная река Европы."),
        ("gb18030", "长城是中国古代的军事防御工程，东起山海关，西至嘉峪关，全长两万多公里。"),
        ("shift_jis", "富士山は日本でいちばん高い山です。"),
        ("euc_kr", "김치는 배추와 고춧가루로 만드는 한국의 전통 음식입니다."),
    ],
)
def test_decode_text_detects_encodings(codec: str, text: str):
    assert decode_text(text.encode(codec)) == text.lstrip("\ufeff")


def test_newlines_normalised():
    assert decode_text(b"a\r\nb\rc\n") == "a\nb\nc\n"


def test_beir_jsonl_one_document_per_record():
    docs = read_documents(DOCS / "beir_corpus.jsonl", DOCS, MB)
    assert [(d.path, d.external_id, d.title) for d in docs] == [
        ("beir_corpus.jsonl#v1", "v1", "Volcanoes"),
        ("beir_corpus.jsonl#b2", "b2", "Honigbienen"),
        ("beir_corpus.jsonl#c3", "c3", "Xadrez"),
    ]
    assert docs[0].text.startswith("A volcano is an opening") and docs[0].file_type == "jsonl"


def test_beir_json_list_dict_and_gzip(tmp_path: Path):
    records = [{"_id": 7, "title": "", "text": "Seven."}, {"_id": "x", "text": "Ex."}]
    (tmp_path / "c.json").write_text(json.dumps(records))
    assert [(d.path, d.title) for d in read_documents(tmp_path / "c.json", tmp_path, MB)] == [
        ("c.json#7", ""),
        ("c.json#x", ""),
    ]
    (tmp_path / "d.json").write_text(json.dumps({"a": {"title": "A", "text": "Alpha."}}))
    assert read_documents(tmp_path / "d.json", tmp_path, MB)[0].path == "d.json#a"
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub/c.jsonl.gz").write_bytes(gzip.compress(b'{"_id": "g", "title": "G", "text": "Gz."}\n'))
    (doc,) = read_documents(tmp_path / "sub/c.jsonl.gz", tmp_path, MB)
    assert (doc.path, doc.external_id, doc.text) == ("sub/c.jsonl.gz#g", "g", "Gz.")


def test_beir_record_without_text_uses_title_or_is_left_out(tmp_path: Path):
    lines = ['{"_id": "1", "title": "Only a title", "text": ""}', '{"_id": "2", "title": "", "text": " "}']
    (tmp_path / "c.jsonl").write_text("\n".join(lines) + "\n")
    (doc,) = read_documents(tmp_path / "c.jsonl", tmp_path, MB)
    assert (doc.external_id, doc.text) == ("1", "Only a title")


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("corrupt.pdf", "corrupt PDF: "),
        ("encrypted.pdf", "encrypted PDF: a password is required"),
        ("scanned.pdf", "scanned PDF? no text layer"),
        ("image.txt", "binary content (NUL bytes)"),
        ("empty.md", "empty file"),
        ("blank.txt", "no text (whitespace only)"),
        ("corrupt.docx", "corrupt DOCX: "),
        ("not_beir.jsonl", 'line 1: not a BEIR corpus record: expected an object with "_id", "text"'),
        ("bad_line.jsonl", "line 2: invalid JSON"),
    ],
)
def test_bad_files_are_skipped_with_a_reason(name: str, reason: str):
    with pytest.raises(SkipFile) as exc:
        read_documents(BAD / name, BAD, 10 * MB)
    assert exc.value.reason.startswith(reason), exc.value.reason


def test_every_bad_fixture_has_a_reason():
    for path in iter_files(BAD):
        with pytest.raises(SkipFile):
            read_documents(path, BAD, 10 * MB)


def test_too_large_file_names_size_and_flag(tmp_path: Path):
    path = tmp_path / "big.txt"
    path.write_bytes(b"a" * (3 * MB // 2))
    with pytest.raises(SkipFile, match=r"^file is 1\.5 MB, over the 1 MB limit \(--max-file-mb\)$"):
        read_documents(path, tmp_path, max_bytes=MB)


def test_gzip_bomb_is_limited_after_decompression(tmp_path: Path):
    (tmp_path / "c.jsonl.gz").write_bytes(gzip.compress(b" " * (2 * MB)))
    with pytest.raises(SkipFile, match="decompressed file is over the 1 MB limit"):
        read_documents(tmp_path / "c.jsonl.gz", tmp_path, max_bytes=MB)


def test_beir_problems_name_the_line(tmp_path: Path):
    cases = {
        '{"_id": "1", "text": "a"}\n{"_id": "1", "text": "b"}\n': "line 2: duplicate _id '1' (first on line 1)",
        '{"_id": "1", "text": "a"}\n\n[1, 2]\n': "line 3: not a BEIR corpus record",
        '{"_id": ["x"], "text": "a"}\n': 'line 1: "_id" must be a string',
    }
    for content, reason in cases.items():
        (tmp_path / "c.jsonl").write_text(content)
        with pytest.raises(SkipFile) as exc:
            read_documents(tmp_path / "c.jsonl", tmp_path, MB)
        assert exc.value.reason.startswith(reason), exc.value.reason
    (tmp_path / "c.json").write_text('{"name": "package", "version": "1.0"}')
    with pytest.raises(SkipFile, match="not a BEIR corpus"):
        read_documents(tmp_path / "c.json", tmp_path, MB)


def test_unsupported_and_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "x.png").write_bytes(b"\x89PNG")
    with pytest.raises(SkipFile, match="unsupported file type '.png'"):
        read_documents(tmp_path / "x.png", tmp_path, MB)
    with pytest.raises(SkipFile, match="cannot read file"):
        read_documents(tmp_path / "missing.txt", tmp_path, MB)
    locked = tmp_path / "locked.txt"
    locked.write_text("secret")

    def deny(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", deny)
    with pytest.raises(SkipFile, match="^permission denied$"):
        read_documents(locked, tmp_path, MB)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_permission_denied_for_real(tmp_path: Path):
    locked = tmp_path / "locked.txt"
    locked.write_text("secret")
    locked.chmod(0)
    with pytest.raises(SkipFile, match="^permission denied$"):
        read_documents(locked, tmp_path, MB)


def test_library_errors_never_escape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import indexer.ingest.loaders as loaders

    def boom(data: bytes, path: Path, rel: str) -> list[Document]:
        raise KeyError("surprise")

    monkeypatch.setitem(loaders._READERS, ".txt", boom)
    (tmp_path / "a.txt").write_text("hello")
    with pytest.raises(SkipFile, match="cannot parse TXT: KeyError"):
        read_documents(tmp_path / "a.txt", tmp_path, MB)


def test_whole_fixture_folder_reads(tmp_path: Path):
    paths = []
    for path in iter_files(DOCS):
        for doc in read_documents(path, DOCS, 10 * MB):
            check_offsets(doc)
            paths.append(doc.path)
    assert len(paths) == len(set(paths)) == 12  # 10 files, one of them a BEIR file with 3 records


def test_sample_corpus_loads_and_queries_name_its_documents():
    sample = Path(__file__).parent.parent.parent / "data" / "sample"
    docs = [d for p in iter_files(sample) for d in read_documents(p, sample, 10 * MB)]
    assert len(docs) >= 25
    assert {d.file_type for d in docs} >= {"md", "txt", "html", "pdf", "docx"}
    assert len({d.path.split("_")[0] for d in docs}) >= 10  # language prefixes
    for doc in docs:
        check_offsets(doc)
    queries = [json.loads(line) for line in (sample.parent / "sample_queries.jsonl").read_text().splitlines()]
    assert 8 <= len(queries) <= 12 and len({q["_id"] for q in queries}) == len(queries)
    paths = {d.path for d in docs}
    for q in queries:
        assert q["text"] and q["lang"] and q["expected"] and set(q["expected"]) <= paths, q


def test_docx_custom_heading_style_based_on_a_builtin(tmp_path: Path):
    import docx
    from docx.enum.style import WD_STYLE_TYPE

    d = docx.Document()
    custom = d.styles.add_style("Chapter Head", WD_STYLE_TYPE.PARAGRAPH)
    custom.base_style = d.styles["Heading 1"]
    d.add_paragraph("Intro text.")
    d.add_paragraph("Chapter one", style="Chapter Head")
    d.add_paragraph("Body of chapter one.")
    d.save(tmp_path / "c.docx")
    (doc,) = read_documents(tmp_path / "c.docx", tmp_path, MB)
    assert [(s.heading_path, s.text) for s in doc.sections] == [
        ((), "Intro text."),
        (("Chapter one",), "Body of chapter one."),
    ]
    assert doc.title == "Chapter one"  # no core title: the first heading
