"""Page-level hits (issue 16, item 4): a PDF hit knows its page, read back from the chunk's heading path; JSON,
the text output, ``--format citations`` and the app's hit card show it; unpaged sources have none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app import render
from e5search.cli import citation, main
from indexer.build.job import build_index
from indexer.search.index import Index
from indexer.storage.catalog import page_of
from indexer.types import Hit
from tests.fakes import FakeEncoder
from tests.fixtures.make_fixtures import pdf_bytes

PAGES = [
    ["Glaciers carve valleys over thousands of years."],
    ["A terminal moraine marks the furthest advance of the glacier."],
    ["Meltwater lakes form behind the ice in spring."],
]


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pages")
    docs = root / "docs"
    docs.mkdir()
    (docs / "ice.pdf").write_bytes(pdf_bytes(PAGES, title="Glaciers and Ice Ages"))
    (docs / "notes.txt").write_text(
        "Field notes: the drumlin field lies north of the lake.\n", encoding="utf-8"
    )
    (docs / "book.md").write_text("# p. 9\n\nAn esker is a ridge of gravel.\n", encoding="utf-8")
    build_index(docs, root / "idx", encoder=FakeEncoder())
    return root / "idx"


def _top(index_dir: Path, query: str, mode: str = "hybrid") -> Hit:
    index = Index.open(index_dir, encoder=FakeEncoder())
    return index.search(query, mode=mode, k=1).hits[0]  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_pdf_hit_carries_its_page(index_dir: Path, mode: str):
    hit = _top(index_dir, "terminal moraine", mode)
    assert (hit.doc_path, hit.page, hit.page_label, hit.section_path) == ("ice.pdf", 2, "p. 2", ())
    assert hit.to_json()["page"] == 2


def test_unpaged_hits_have_no_page(index_dir: Path):
    txt = _top(index_dir, "drumlin field")
    assert (txt.doc_path, txt.page) == ("notes.txt", None)
    md = _top(index_dir, "esker gravel ridge")  # a Markdown heading that looks like a page is just a heading
    assert (md.doc_path, md.page, md.section_path) == ("book.md", None, ("p. 9",))


def test_json_text_and_citations_output(index_dir: Path, capsys: pytest.CaptureFixture[str]):
    base = ["search", "terminal moraine", "--index", str(index_dir), "--mode", "bm25", "-k", "1"]
    assert main([*base, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["hits"][0]["page"] == 2
    assert main(base) == 0
    assert "ice.pdf, p. 2 - Glaciers and Ice Ages" in capsys.readouterr().out
    assert main([*base, "--format", "citations"]) == 0
    out = capsys.readouterr().out
    assert (
        out
        == '[1] Glaciers and Ice Ages — ice.pdf, p. 2: "A terminal moraine marks the furthest advance of the glacier."\n'
    )
    assert main([*base[:1], "drumlin field", *base[2:], "--format", "citations"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("[1] ") and "notes.txt:" in out and "p." not in out


def test_citations_and_json_are_exclusive(index_dir: Path):
    with pytest.raises(SystemExit):
        main(["search", "moraine", "--index", str(index_dir), "--json", "--format", "citations"])


def test_citation_shows_slide_and_heading_path():
    hit = Hit(1, 0.5, 3, "deck.pptx", "Deck", "x " * 150, "en", ("slide 3", "Results"), page=3)
    line = citation(hit, width=20)
    assert line == '[1] Deck — deck.pptx, slide 3 (Results): "x x x x x x x x x x…"'


def test_page_of_reads_only_paged_types():
    assert page_of("pdf", ("p. 12",)) == 12 and page_of("pptx", ("slide 2", "Intro")) == 2
    assert page_of("pdf", ()) is None and page_of("pdf", ("Intro",)) is None
    assert page_of("md", ("p. 3",)) is None and page_of("epub", ("Chapter 1",)) is None


def test_hit_card_shows_the_page_next_to_the_path():
    hit = Hit(1, 0.5, 3, "a/<b>.pdf", "T", "x", "en", ("p. 2",), page=2)
    html = render.hit_card(hit, "snippet", k=10)
    assert 'a/&lt;b&gt;.pdf <span class="e5-page"' in html and ">p. 2</span>" in html and "›" not in html
    slide = Hit(1, 0.5, 3, "d.pptx", "T", "x", "en", ("slide 4", "<Plan>"), page=4)
    assert ">slide 4</span> › &lt;Plan&gt;" in render.hit_card(slide, "s", k=10)


def test_citations_for_many_queries_name_each_query(
    index_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"_id": "q1", "text": "terminal moraine"}\n{"_id": "q2", "text": "drumlin"}\n')
    argv = ["search", "--queries", str(queries), "--index", str(index_dir), "--mode", "bm25", "-k", "1"]
    assert main([*argv, "--format", "citations"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "# q1: terminal moraine" and "ice.pdf, p. 2" in lines[1]
    assert lines[2] == "# q2: drumlin" and "notes.txt:" in lines[3] and len(lines) == 4
