"""Hostile input (issue 13): one bad file never aborts or hangs an indexing run, and every skip has a reason.

Each test builds its hostile files in ``tmp_path`` and indexes them beside a good one with the fake encoder. The
time bounds are loose on purpose (a run that hangs or crawls fails them; a slow machine does not).
"""

from __future__ import annotations

import io
import os
import sqlite3
import time
import zipfile
from pathlib import Path

import pytest

from indexer.build.job import IndexSummary, build_index
from indexer.config import IndexConfig
from indexer.errors import ConfigError
from indexer.ingest.loaders import read_documents
from indexer.ingest.text import decode_text
from indexer.search.index import Index
from tests.fakes import FakeEncoder
from tests.indexer.test_build import write_docs

GOOD = {"good.txt": "Glaciers carve deep valleys into the mountains."}


LOOSE_BOUND_S = 60  # "finishes at all, and not after minutes": never a performance assertion


def index(source: Path, index_dir: Path, config: IndexConfig = IndexConfig()) -> IndexSummary:
    t0 = time.perf_counter()
    summary = build_index(source, index_dir, config, encoder=FakeEncoder())
    assert time.perf_counter() - t0 < LOOSE_BOUND_S
    return summary


def reasons(summary: IndexSummary) -> dict[str, str]:
    return {s["path"]: s["reason"] for s in summary.skipped}


def file_rows(index_dir: Path) -> dict[str, tuple[str, str | None]]:
    """What ``e5search info`` shows: path -> (status, reason)."""
    with sqlite3.connect(index_dir / "index.sqlite") as conn:
        return {p: (s, r) for p, s, r in conn.execute("SELECT path, status, reason FROM files")}


def doc_paths(index_dir: Path) -> set[str]:
    with sqlite3.connect(index_dir / "index.sqlite") as conn:
        return {row[0] for row in conn.execute("SELECT path FROM documents")}


# ---------------------------------------------------------------- 1. file names that are not UTF-8


def test_file_name_not_utf8_is_indexed_and_unchanged_next_run(tmp_path: Path):
    docs = write_docs(tmp_path / "docs", GOOD)
    folder = os.fsencode(docs / "f")
    os.mkdir(folder)
    try:  # two Latin-1 names that differ only in their undecodable byte must stay two files
        for name, text in ((b"caf\xe9.txt", b"espresso crema"), (b"caf\xe8.txt", b"cappuccino milk")):
            with open(os.path.join(folder, name), "wb") as f:
                f.write(text)
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    s = index(docs, tmp_path / "idx")
    assert (s.added, s.skipped) == (3, [])
    rows = file_rows(tmp_path / "idx")
    assert {"f/caf\\xe9.txt", "f/caf\\xe8.txt"} <= set(rows)  # the stray byte escaped: storable and unique
    hit = Index.open(tmp_path / "idx", encoder=FakeEncoder()).search("espresso", mode="bm25").hits[0]
    assert (hit.doc_path, hit.title) == ("f/caf\\xe9.txt", "caf\ufffd")
    again = index(docs, tmp_path / "idx")
    assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, 3)


# ---------------------------------------------------------------- 2. a folder tree deeper than the recursion limit


DEPTH = 1100  # deeper than Python's recursion limit (1000)


def test_folder_tree_1100_levels_deep(tmp_path: Path):
    docs = write_docs(tmp_path / "docs", GOOD)
    levels = [os.path.join(str(docs), *["d"] * n) for n in range(1, DEPTH + 1)]
    for level in levels:  # one at a time: Path.mkdir(parents=True) recurses too
        os.mkdir(level)
    try:
        Path(levels[-1], "bottom.txt").write_text("The deepest note mentions an axolotl.", encoding="utf-8")
        s = index(docs, tmp_path / "idx")
        assert (
            s.added + len(s.skipped) == 2
        )  # the deep file indexed or skipped with a reason; the run completed
        if s.added == 2:
            hits = Index.open(tmp_path / "idx", encoder=FakeEncoder()).search("axolotl", mode="bm25").hits
            assert hits[0].doc_path.endswith("d/d/bottom.txt")
    finally:  # pytest's own clean-up of old tmp folders recurses, and would fail on this tree
        os.unlink(os.path.join(levels[-1], "bottom.txt"))
        for level in reversed(levels):
            os.rmdir(level)


# ---------------------------------------------------------------- 3. a BEIR record's path that is also a file's


CORPUS = '{"_id": "x.txt", "text": "Record about penguins."}\n{"_id": "y", "text": "Record about owls."}\n'


def test_record_path_colliding_with_a_file_is_skipped_before_encoding(tmp_path: Path):
    docs = write_docs(
        tmp_path / "docs", {**GOOD, "corpus.jsonl": CORPUS, "corpus.jsonl#x.txt": "File on kiwis."}
    )
    s = index(docs, tmp_path / "idx")  # was: IntegrityError (documents.path) after all the encoding
    assert "corpus.jsonl" in reasons(s)["corpus.jsonl#x.txt"] and s.added == 2
    assert file_rows(tmp_path / "idx")["corpus.jsonl#x.txt"][0] == "skipped"
    assert doc_paths(tmp_path / "idx") == {"good.txt", "corpus.jsonl#x.txt", "corpus.jsonl#y"}
    again = index(docs, tmp_path / "idx")
    assert (again.added, again.removed, again.unchanged) == (0, 0, 3)


@pytest.mark.parametrize("first", ["corpus.jsonl", "corpus.jsonl#x.txt"])
def test_colliding_file_or_corpus_added_in_a_later_run(tmp_path: Path, first: str):
    files = {"corpus.jsonl": CORPUS, "corpus.jsonl#x.txt": "File on kiwis."}
    docs = write_docs(tmp_path / "docs", {**GOOD, first: files[first]})
    index(docs, tmp_path / "idx")
    write_docs(docs, files)
    s = index(docs, tmp_path / "idx")
    assert set(reasons(s)) == {"corpus.jsonl#x.txt"}
    assert doc_paths(tmp_path / "idx") == {"good.txt", "corpus.jsonl#x.txt", "corpus.jsonl#y"}
    hits = Index.open(tmp_path / "idx", encoder=FakeEncoder()).search("penguins kiwis", mode="bm25").hits
    assert {h.doc_path for h in hits} == {"corpus.jsonl#x.txt"} and hits[0].doc_id == "x.txt"


def test_records_of_two_corpora_colliding(tmp_path: Path):
    other = '{"_id": "1", "text": "Second corpus record on lynxes."}\n'
    first = '{"_id": "y.jsonl#1", "text": "First corpus record on bison."}\n'
    docs = write_docs(tmp_path / "docs", {**GOOD, "c.jsonl": first, "c.jsonl#y.jsonl": other})
    s = index(docs, tmp_path / "idx")
    assert set(reasons(s)) == {"c.jsonl#y.jsonl"} and s.added == 2


def test_record_colliding_with_a_file_outside_the_runs_scope(tmp_path: Path):
    docs = write_docs(tmp_path / "docs", {**GOOD, "corpus.jsonl#x.txt": "File on kiwis."})
    index(docs, tmp_path / "idx")
    write_docs(docs, {"corpus.jsonl": CORPUS})
    s = index(docs / "corpus.jsonl", tmp_path / "idx")  # only this file: the other keeps its document
    assert "corpus.jsonl#x.txt" in reasons(s)["corpus.jsonl"]
    assert doc_paths(tmp_path / "idx") == {"good.txt", "corpus.jsonl#x.txt"}


# ---------------------------------------------------------------- 4. a FIFO and a link to /dev/zero


@pytest.mark.parametrize("follow", [False, True])
def test_fifo_and_link_to_dev_zero_finish_with_reasons(tmp_path: Path, follow: bool):
    docs = write_docs(tmp_path / "docs", GOOD)
    os.mkfifo(docs / "pipe.txt")
    os.symlink("/dev/zero", docs / "zero.txt")
    s = index(docs, tmp_path / "idx", IndexConfig(follow_symlinks=follow))
    why = reasons(s)
    assert "FIFO" in why["pipe.txt"]
    assert ("not a regular file" if follow else "outside the indexed folder") in why["zero.txt"]
    assert s.added == 1
    rows = file_rows(tmp_path / "idx")
    assert rows["pipe.txt"] == ("skipped", why["pipe.txt"])  # e5search info shows it too
    again = index(docs, tmp_path / "idx", IndexConfig(follow_symlinks=follow))
    assert (again.added, again.unchanged, again.skipped) == (0, 3, [])


# ---------------------------------------------------------------- 5. links to files outside the folder


def test_link_outside_the_folder_is_skipped_unless_follow_symlinks(tmp_path: Path):
    outside = write_docs(tmp_path / "outside", {"secret.txt": "The zebracorn password is hunter2."})
    docs = write_docs(tmp_path / "docs", {**GOOD, "real.txt": "Inside text about otters."})
    os.symlink(outside / "secret.txt", docs / "passwd.txt")
    os.symlink(docs / "real.txt", docs / "alias.txt")  # inside -> inside is fine
    os.symlink(docs / "gone.txt", docs / "broken.txt")
    s = index(docs, tmp_path / "idx")
    why = reasons(s)
    assert set(why) == {"passwd.txt", "broken.txt"} and s.added == 3
    assert "outside the indexed folder" in why["passwd.txt"] and "--follow-symlinks" in why["passwd.txt"]
    assert "broken link" in why["broken.txt"]
    index_ = Index.open(tmp_path / "idx", encoder=FakeEncoder())
    assert index_.search("zebracorn", mode="bm25").hits == []
    assert index_.manifest["config"]["follow_symlinks"] is False

    s = index(docs, tmp_path / "idx", IndexConfig(follow_symlinks=True))  # the same index, now following
    assert (s.updated, s.unchanged, s.skipped) == (1, 4, [])  # the broken link stays skipped, as it was
    assert file_rows(tmp_path / "idx")["broken.txt"][0] == "skipped"
    index_ = Index.open(tmp_path / "idx", encoder=FakeEncoder())
    assert index_.search("zebracorn", mode="bm25").hits[0].doc_path == "passwd.txt"
    assert index_.manifest["config"]["follow_symlinks"] is True


def test_new_config_fields_are_validated():
    for bad in ({"follow_symlinks": "yes"}, {"file_timeout_s": 0}, {"max_unzipped_mb": -1}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            IndexConfig(**bad)  # type: ignore[arg-type]
    assert IndexConfig.from_dict({"follow_symlinks": True}).follow_symlinks is True


def test_cli_flag_reaches_the_config(tmp_path: Path):
    from e5search.cli import _index_config, build_parser

    args = build_parser().parse_args(["index", str(tmp_path), "--index", str(tmp_path / "i")])
    assert _index_config(args).follow_symlinks is False
    args = build_parser().parse_args(
        ["index", str(tmp_path), "--index", str(tmp_path / "i"), "--follow-symlinks"]
    )
    assert _index_config(args).follow_symlinks is True


# ---------------------------------------------------------------- 6. a zip bomb as .docx

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Target="word/document.xml" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"/></Relationships>'
)


def docx_bytes(paragraphs: list[str]) -> bytes:
    """A minimal DOCX: its document.xml holds one paragraph per string."""
    body = "".join(f"<w:p><w:r><w:t>{p}</w:t></w:r></w:p>" for p in paragraphs)
    xml = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document '
        f'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>'
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", _CONTENT_TYPES)
        z.writestr("_rels/.rels", _RELS)
        z.writestr("word/document.xml", xml)
    return buf.getvalue()


BOMB = ["All work and no play makes Jack a dull boy."] * 40_000  # ~3 MB of XML in ~11 KB


def test_docx_bomb_is_refused_by_its_compression_ratio(tmp_path: Path):
    docs = write_docs(tmp_path / "docs", GOOD)
    (docs / "bomb.docx").write_bytes(docx_bytes(BOMB))
    s = index(docs, tmp_path / "idx")
    assert "word/document.xml expands" in reasons(s)["bomb.docx"] and "zip bomb" in reasons(s)["bomb.docx"]
    assert s.added == 1


def test_docx_over_the_unzipped_size_limit(tmp_path: Path):
    docs = write_docs(tmp_path / "docs", GOOD)
    (docs / "big.docx").write_bytes(docx_bytes(BOMB))
    s = index(docs, tmp_path / "idx", IndexConfig(max_unzipped_mb=1))
    assert reasons(s)["big.docx"].startswith("DOCX expands to 2.9 MB of XML (limit 1 MB")


def test_docx_with_too_many_elements(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import indexer.ingest.limits as limits

    monkeypatch.setattr(limits, "MAX_XML_ELEMENTS", 1000)
    (tmp_path / "many.docx").write_bytes(docx_bytes([f"Paragraph {i}." for i in range(400)]))
    from indexer.errors import SkipFile

    with pytest.raises(SkipFile, match="over 1,000 XML elements"):
        read_documents(tmp_path / "many.docx", tmp_path, 1 << 20)
    monkeypatch.undo()
    (doc,) = read_documents(tmp_path / "many.docx", tmp_path, 1 << 20)  # an ordinary DOCX still reads
    assert doc.text.startswith("Paragraph 0.")


# ---------------------------------------------------------------- 7. a per-file time budget


def test_file_over_its_time_budget_is_skipped_and_the_run_goes_on(tmp_path: Path):
    big = " ".join(f"word{i % 997} sentence." for i in range(60_000))  # ~1 MB: seconds of chunking
    docs = write_docs(tmp_path / "docs", {**GOOD, "big.txt": big, "zz.txt": "Later file on walruses."})
    s = index(docs, tmp_path / "idx", IndexConfig(file_timeout_s=0.05))
    assert "took over 0.05" in reasons(s)["big.txt"] and "file_timeout_s per MB" in reasons(s)["big.txt"]
    assert s.added + len(s.skipped) == 3  # every file after it was still read
    s = index(
        docs, tmp_path / "idx"
    )  # unchanged, but a time skip is tried again (here with the default budget)
    assert s.updated == 1 and "big.txt" not in reasons(s)


def test_unexpected_error_in_one_file_becomes_its_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import indexer.build.scan as scan

    real = scan.detect_languages

    def flaky(texts):
        if any("poison" in t for t in texts):
            raise ValueError("detector broke")
        return real(texts)

    monkeypatch.setattr(scan, "detect_languages", flaky)
    docs = write_docs(tmp_path / "docs", {**GOOD, "bad.txt": "A poison pill."})
    s = index(docs, tmp_path / "idx")
    assert reasons(s) == {"bad.txt": "reading failed: ValueError: detector broke"} and s.added == 1


# ---------------------------------------------------------------- 8. stray bytes in a UTF-8 file


def test_stray_bytes_in_utf8_keep_umlauts_and_cyrillic(tmp_path: Path):
    text = "Grüße aus Köln, schöne Bäume. Привет из Москвы, это тест. " * 30
    data = text[:150].encode() + b"\xff" + text[150:600].encode() + b"\x81" + text[600:].encode()
    decoded = decode_text(data)
    assert decoded.count("\ufffd") == 2
    assert decoded.replace("\ufffd", "") == text
    (tmp_path / "mixed.txt").write_bytes(data)
    (doc,) = read_documents(tmp_path / "mixed.txt", tmp_path, 1 << 20)
    assert "Grüße aus Köln" in doc.text and "Привет из Москвы" in doc.text


def test_legacy_code_page_text_is_still_detected():
    text = "Grüße aus Köln, schöne Bäume und viele Äpfel. " * 5
    assert decode_text(text.encode("cp1252")) == text


# ---------------------------------------------------------------- found on the way


def test_run_of_100k_dots_does_not_crawl(tmp_path: Path):
    """The sentence splitter backtracked quadratically on a long run of stops: 200k dots took minutes."""
    docs = write_docs(
        tmp_path / "docs", {**GOOD, "dots.txt": "Table of contents " + "." * 100_000 + "7 ends it"}
    )
    s = index(docs, tmp_path / "idx")
    assert s.added + len(s.skipped) == 2


def test_lone_surrogates_in_a_beir_record(tmp_path: Path):
    corpus = '{"_id": "a\\udce9", "title": "T\\ud800", "text": "Broken \\udfff text about herons."}\n'
    docs = write_docs(tmp_path / "docs", {**GOOD, "c.jsonl": corpus})
    s = index(docs, tmp_path / "idx")
    assert (s.added, s.skipped) == (2, [])
    hit = Index.open(tmp_path / "idx", encoder=FakeEncoder()).search("herons", mode="bm25").hits[0]
    assert (hit.doc_id, hit.title) == ("a\\xe9", "T\ufffd")
