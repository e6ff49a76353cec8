"""The app's pure helpers: highlighting, column agreement, URL state, progress, escaping, example queries."""

from __future__ import annotations

import json
import random

import pytest

from app import highlight, indexing, render, service, urlstate
from app.compare import agreements, kendall_tau, movement, overlap
from indexer.errors import IndexStateError
from indexer.retrieval.analysis import Analyzer
from indexer.types import Hit

ANALYZER = Analyzer()


def marked(text: str, spans) -> list[str]:
    return [text[a:b] for a, b in spans]


# ------------------------------------------------------------------------------------------------ highlighting
def test_lexical_spans_follow_the_bm25_analyser():
    text = "Roasting coffee: the beans are roasted, then the roaster cools them."
    terms = ANALYZER.analyze("roasted coffee bean", "en")
    spans = highlight.lexical_spans(text, terms, lambda w: ANALYZER.analyze(w, "en"))
    assert marked(text, spans) == ["Roasting", "coffee", "beans", "roasted"]


def test_lexical_spans_mark_cjk_bigrams():
    text = "龙井茶产自杭州，人们用热水泡茶。"
    terms = ANALYZER.analyze("杭州的龙井", "zh")  # bigrams 杭州 州的 的龙 龙井
    spans = highlight.lexical_spans(text, terms, lambda w: ANALYZER.analyze(w, "zh"))
    assert marked(text, spans) == ["龙井", "杭州"]


def test_lexical_spans_without_terms_mark_nothing():
    assert highlight.lexical_spans("anything at all", [], lambda w: [w]) == []


@pytest.mark.parametrize("run", ["東京タワー", "김치찌개", "ภาษาไทย", "ひらがな", "北京"])
def test_bigram_scripts_agree_with_the_bm25_analyser(run):
    """Runs the highlighter compares as bigrams are exactly those the analyser indexes as bigrams."""
    assert highlight._NGRAM_RUN.fullmatch(run[0])
    assert ANALYZER.analyze(run, "und") == [run[i : i + 2] for i in range(len(run) - 1)]
    spans = highlight.lexical_spans(run, ANALYZER.analyze(run, "und"), lambda w: [])
    assert spans == [(0, len(run))]


@pytest.mark.parametrize("word", ["Wolga", "Волга", "مرحبا", "नमस्ते"])
def test_other_scripts_are_words(word):
    assert not highlight._NGRAM_RUN.match(word)


def test_sentence_spans_cover_scripts_and_lines():
    text = "First sentence. Second one!\nA line\n\n日本語の文。次の文。"
    assert marked(text, highlight.sentence_spans(text)) == [
        "First sentence.",
        "Second one!",
        "A line",
        "日本語の文。",
        "次の文。",
    ]


def test_snippet_window_shows_the_focus():
    text = "x " * 500 + "needle here" + " y" * 500
    start = text.index("needle")
    snip = highlight.make_snippet(text, [(start, start + 6)], width=100)
    html = highlight.to_html(snip)
    assert html.startswith("… ") and html.endswith(" …")
    assert '<mark class="e5-lex">needle</mark>' in html
    assert len(snip.text[snip.window[0] : snip.window[1]]) == 100


def test_html_escapes_everything_and_nests_marks_inside_the_sentence():
    text = 'Before. <script>alert("x")</script> & ![img](http://x/y.png) here. After.'
    start = text.index("<script>")
    sentence = (8, text.index(" After"))
    html = highlight.to_html(highlight.make_snippet(text, [(start, start + 8)], sentence))
    assert "<script" not in html
    assert '<span class="e5-sent"><mark class="e5-lex">&lt;script&gt;</mark></span>' in html
    assert "&amp; ![img](http://x/y.png)" in html  # stays text: st.html does not read Markdown


# ------------------------------------------------------------------------------------------------ agreement
@pytest.mark.parametrize("seed", range(20))
def test_kendall_tau_matches_scipy_on_the_shared_items(seed):
    stats = pytest.importorskip("scipy.stats")
    rng = random.Random(seed)
    a = rng.sample(range(30), 10)
    b = rng.sample(range(30), 10)
    shared = [x for x in a if x in b]
    tau = kendall_tau(a, b)
    if len(shared) < 2:
        assert tau is None
        return
    expected = stats.kendalltau([a.index(x) for x in shared], [b.index(x) for x in shared]).statistic
    assert tau == pytest.approx(expected)


def test_overlap_and_agreements():
    cols = {"A": [1, 2, 3], "B": [3, 2, 9], "C": [7, 8, 9]}
    assert overlap(cols["A"], cols["B"]) == 2
    rows = agreements(cols)
    assert [(r.left, r.right, r.shared, r.k, r.tau) for r in rows] == [
        ("A", "B", 2, 3, -1.0),
        ("A", "C", 0, 3, None),
        ("B", "C", 1, 3, None),
    ]


def test_movement_labels():
    assert [movement(1, 4, 5), movement(4, 1, 5), movement(2, 2, 5), movement(1, 6, 5)] == [
        "▲3",
        "▼3",
        "=",
        "new",
    ]


# ------------------------------------------------------------------------------------------------ URL state
def test_url_state_round_trips():
    state = urlstate.PageState(
        page="search",
        query="Wie entsteht Kaffee? & más",
        k=20,
        rerank=True,
        lang="de",
        file_type="md",
        path_prefix="docs/",
        opened=42,
    )
    assert urlstate.from_params(urlstate.to_params(state)) == state
    assert urlstate.to_params(urlstate.PageState()) == {}


def test_url_state_ignores_what_it_cannot_use():
    state = urlstate.from_params({"page": "admin", "k": "abc", "open": "-3", "rerank": "maybe", "q": ""})
    assert state == urlstate.PageState()
    assert urlstate.from_params({"k": "7"}).k == 10  # not a choice


# ------------------------------------------------------------------------------------------------ progress, rendering
def test_progress_clock_gives_overall_fraction_and_eta():
    clock = indexing.ProgressClock()
    assert clock.update("reading", 0, 10, now=0.0) == (0.0, "1/3 files read: 0 / 10")
    frac, text = clock.update("reading", 5, 10, now=10.0)
    assert frac == pytest.approx(0.5 / 3) and text == "1/3 files read: 5 / 10, about 10 s left"
    frac, text = clock.update("encoding", 25, 100, now=20.0)  # a new stage restarts the clock
    assert frac == pytest.approx(1.25 / 3) and text == "2/3 chunks encoded: 25 / 100"
    frac, text = clock.update("encoding", 50, 100, now=30.0)
    assert text == "2/3 chunks encoded: 50 / 100, about 20 s left"
    assert clock.update("writing", 1, 1, now=40.0) == (1.0, "3/3 writing the index")


def test_hit_card_escapes_document_fields():
    hit = Hit(
        rank=2,
        score=0.5,
        chunk_id=7,
        doc_path="a/<b>.md",
        title="<i>T</i>",
        text="x",
        lang="de",
        heading_path=("<h1>",),
        prev_rank=5,
    )
    html = render.hit_card(hit, "snippet", k=10)
    assert "&lt;b&gt;.md" in html and "&lt;i&gt;T&lt;/i&gt;" in html and "&lt;h1&gt;" in html
    assert "<i>" not in html and "▲3" in html


def test_timing_line_orders_stages_and_totals():
    line = render.timing_line(
        {"encode_query": 12.34, "dense_search": 1.5, "hydrate": 3.0, "total": 17.0, "highlight": 2.0}
    )
    assert line == "encode 12 ms · dense search 1.5 ms · fetch 3.0 ms · highlight 2.0 ms · total 19 ms"


def test_example_queries_are_read_beside_the_folder(tmp_path):
    (tmp_path / "docs").mkdir()
    lines = [
        {"text": "Wie entsteht Kaffee?", "lang": "de", "expected": ["en_coffee.md"]},
        "not json",
        {"query": "tea", "note": "short"},
        {"text": ""},
    ]
    (tmp_path / "docs_queries.jsonl").write_text(
        "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines), encoding="utf-8"
    )
    assert service.example_queries(str(tmp_path / "docs")) == [
        service.Example("Wie entsteht Kaffee?", "de", None, ("en_coffee.md",)),
        service.Example("tea", None, "short"),
    ]
    assert service.example_queries(str(tmp_path / "elsewhere")) == []
    assert service.example_queries(None) == []


def test_unreadable_folder_gets_a_clear_message(tmp_path, monkeypatch):
    def denied(path):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(indexing.os, "scandir", denied)
    with pytest.raises(
        indexing.ConfigError, match="cannot be read \\(Permission denied\\): fix its permissions"
    ):
        indexing.resolve_folder(str(tmp_path), [tmp_path])
    assert indexing.subfolders(tmp_path) == []


def test_remove_index_deletes_only_index_files(tmp_path):
    from indexer.build.job import build_index
    from tests.fakes import FakeEncoder

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("Kaffee und Kuchen.\n", encoding="utf-8")
    index_dir = tmp_path / "index"
    build_index(tmp_path / "docs", index_dir, encoder=FakeEncoder())
    (index_dir / "my-notes.txt").write_text("not part of the index", encoding="utf-8")
    removed = indexing.remove_index(index_dir)
    assert "index.sqlite" in removed and "my-notes.txt" not in removed
    assert sorted(p.name for p in index_dir.iterdir()) == ["my-notes.txt"]
    with pytest.raises(IndexStateError, match="nothing to remove"):
        indexing.remove_index(tmp_path / "docs")
