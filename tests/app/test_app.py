"""The app's pages driven by Streamlit's AppTest against real small indexes built with the FakeEncoder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app import render, service
from app.render import md
from indexer.search.index import Index
from indexer.storage.layout import Layout
from tests.app.conftest import BEIR, CORPUS
from tests.fakes import FakeEncoder

APP = str(Path(__file__).resolve().parents[2] / "app" / "streamlit_app.py")
TIMEOUT = 60


@pytest.fixture(autouse=True)
def fake_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Every index the app opens or builds uses the FakeEncoder; no reranker unless a test sets one."""
    monkeypatch.setenv("E5SEARCH_RERANKER", "none")  # also off when the repository ships a default reranker
    monkeypatch.setenv("E5SEARCH_HOME", str(tmp_path / "home"))  # the eval's index cache
    service.use_encoder(FakeEncoder())
    yield
    service.use_encoder(None)


def start(monkeypatch: pytest.MonkeyPatch, index_dir: Path, params: dict[str, str] | None = None) -> AppTest:
    monkeypatch.setenv("E5SEARCH_INDEX", str(index_dir))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in (params or {}).items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def search(at: AppTest, query: str) -> AppTest:
    at.text_input(key="query").input(query).run()
    assert not at.exception, at.exception
    return at


def cards(at: AppTest) -> list[str]:
    """The HTML of every hit card on the page, in page order (BM25's, then Dense's, then Hybrid's)."""
    return [h.proto.body for h in at.get("html") if 'class="e5-hit"' in h.proto.body]


def column_cards(at: AppTest) -> dict[str, list[str]]:
    """Hit cards per column, keyed by the column's title."""
    out = {}
    for col in at.columns:
        titles = [s.value for s in col.subheader]
        if titles:
            out[titles[0]] = [h.proto.body for h in col.get("html") if 'class="e5-hit"' in h.proto.body]
    return out


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def click(at: AppTest, label: str) -> AppTest:
    [button] = [b for b in at.button if b.label == label]
    button.click().run()
    assert not at.exception, at.exception
    return at


# ------------------------------------------------------------------------------------------------ search page
def test_no_index_yet_says_what_to_do(monkeypatch, tmp_path):
    at = start(monkeypatch, tmp_path / "nothing-here")
    assert any("no index at" in t and "Index page" in t for t in texts(at.info))
    click(at, "Go to the Index page")
    assert at.radio(key="page").value == "index"


def test_empty_query_asks_for_one(monkeypatch, fake_index):
    at = start(monkeypatch, fake_index)
    assert any("Type a query" in t for t in texts(at.info))
    search(at, "   ")
    assert any("Type a query" in t for t in texts(at.info))
    assert not cards(at)


def test_search_fills_three_columns_with_the_expected_documents(monkeypatch, fake_index):
    at = search(start(monkeypatch, fake_index), "coffee beans roasted")
    columns = column_cards(at)
    assert list(columns) == ["BM25", "Dense (E5)", "Hybrid"]
    for title, column in columns.items():
        assert column, title
        assert "en_coffee.md" in column[0] or "recipes/espresso.md" in column[0], (title, column[0])
        assert len(column) <= 10
    # lexical matches are marked in the BM25 column (stemmed: "roasted" matches "roast")
    assert '<mark class="e5-lex">' in columns["BM25"][0]
    # per-stage latency under each column, agreement between the columns
    timings = [t for t in texts(at.caption) if "total" in t and " ms" in t]
    assert (
        len(timings) == 3 and "BM25 search" in timings[0] and "encode" in timings[1] and "fuse" in timings[2]
    )
    assert [m.label for m in at.metric] == [
        "BM25 ∩ Dense (E5)",
        "BM25 ∩ Hybrid",
        "Dense (E5) ∩ Hybrid",
    ]
    assert all("shared" in m.value for m in at.metric)
    assert any(t.startswith("Kendall τ") for t in texts(at.caption))


def test_hybrid_column_shows_the_weights_its_fusion_used(monkeypatch, fake_index):
    at = search(start(monkeypatch, fake_index), "Wie entsteht Kaffee?")
    [hybrid] = [col for col in at.columns if [s.value for s in col.subheader] == ["Hybrid"]]
    fusion = Index.open(fake_index, encoder=FakeEncoder()).search("Wie entsteht Kaffee?", k=10).fusion
    assert fusion is not None and fusion.method == "weighted"
    assert md(render.fusion_line(fusion)) in texts(hybrid.caption)
    assert f"BM25 {fusion.bm25:.2f} · dense {fusion.dense:.2f}" in render.fusion_line(fusion)
    for col in at.columns:  # the other columns show no weights
        if [s.value for s in col.subheader] in (["BM25"], ["Dense (E5)"]):
            assert not any("BM25 0" in t or "BM25 1" in t for t in texts(col.caption))


def test_dense_column_marks_the_best_sentence(monkeypatch, fake_index):
    at = search(start(monkeypatch, fake_index), "Coffee plants grow in the tropics")
    dense = column_cards(at)["Dense (E5)"]
    top = next(c for c in dense if "en_coffee.md" in c)
    assert '<span class="e5-sent">' in top
    marked = top.split('<span class="e5-sent">', 1)[1].split("</span>", 1)[0]
    assert "tropics" in marked


def test_settings_and_query_go_into_the_url(monkeypatch, fake_index):
    at = search(start(monkeypatch, fake_index), "Kaffee")
    at.selectbox(key="k").set_value(3).run()
    at.selectbox(key="lang").set_value("de").run()
    params = {k: v[0] if isinstance(v, list) else v for k, v in at.query_params.items()}
    assert params == {"q": "Kaffee", "k": "3", "lang": "de"}


def test_url_restores_query_and_settings(monkeypatch, fake_index):
    at = start(monkeypatch, fake_index, {"q": "coffee", "k": "3", "prefix": "recipes/"})
    assert at.text_input(key="query").value == "coffee"
    assert at.selectbox(key="k").value == 3
    assert at.text_input(key="path_prefix").value == "recipes/"
    columns = column_cards(at)
    assert all(1 <= len(c) <= 3 for c in columns.values())
    assert all("recipes/" in card for c in columns.values() for card in c)


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("lang", "de", '<span class="e5-lang" title="language of this chunk">de</span>'),
        ("file_type", "md", ".md"),
    ],
)
def test_filters_restrict_every_column(monkeypatch, fake_index, key, value, needle):
    at = search(start(monkeypatch, fake_index), "Kaffee coffee Bohnen beans")
    at.selectbox(key=key).set_value(value).run()
    columns = column_cards(at)
    assert all(columns.values())
    assert all(needle in card for c in columns.values() for card in c)


def test_k_limits_each_column(monkeypatch, fake_index):
    at = search(start(monkeypatch, fake_index), "coffee tea bread cheese river")
    at.selectbox(key="k").set_value(3).run()
    assert all(len(c) == 3 for c in column_cards(at).values())


def test_document_text_is_escaped(monkeypatch, fake_index):
    at = search(start(monkeypatch, fake_index), "dangerous script injection")
    html = "".join(cards(at))
    assert "script_test.txt" in html
    assert "&lt;script&gt;alert(&quot;xss&quot;)&lt;/script&gt;" in html
    assert "<script" not in html and "<b>" not in html and "<img" not in html


def test_huge_query_gets_a_message(monkeypatch, fake_index):
    at = search(start(monkeypatch, fake_index), "coffee " * 1000)
    assert any("the limit is 2000" in t for t in texts(at.error))
    assert not cards(at)


def test_unknown_language_in_the_url_gets_a_message(monkeypatch, fake_index):
    at = start(monkeypatch, fake_index, {"q": "coffee", "lang": "xx"})
    assert any("unknown language 'xx'" in t for t in texts(at.error))


def test_open_a_hit_shows_chunk_neighbours_and_metadata(monkeypatch, fake_index):
    at = search(start(monkeypatch, fake_index), "Coffee plants grow in the tropics")
    at.button(key="open-dense-1").click().run()
    side = at.sidebar
    body = "".join(h.proto.body for h in side.get("html"))
    assert "tropics" in body or "Coffee" in body
    meta = side.dataframe[0].value
    assert "path" in list(meta["field"])
    assert at.query_params["open"]
    at.button(key="close-opened").click().run()
    assert not at.sidebar.dataframe


def test_example_queries_fill_the_query(monkeypatch, fake_index):
    at = start(monkeypatch, fake_index)
    pills = at.button_group(key="example")
    assert "Wie röstet man Kaffee?" in pills.options or any("Wie röstet" in str(o) for o in pills.options)
    pills.set_value("Wie röstet man Kaffee?").run()
    assert at.text_input(key="query").value == "Wie röstet man Kaffee?"
    assert cards(at)


def test_rerank_switch_is_disabled_without_a_reranker(monkeypatch, fake_index):
    at = start(monkeypatch, fake_index)
    toggle = at.toggle(key="rerank")
    assert toggle.disabled
    assert "no reranker configured" in toggle.help
    assert any("Reranking is off" in t for t in texts(at.caption))


def test_rerank_shows_how_far_each_hit_moved(monkeypatch, fake_index, tiny_reranker):
    monkeypatch.setenv("E5SEARCH_RERANKER", str(tiny_reranker))
    at = search(start(monkeypatch, fake_index), "coffee beans roasted water")
    at.selectbox(key="k").set_value(5).run()
    assert not at.toggle(key="rerank").disabled
    assert at.toggle(key="rerank").value  # on by default when a reranker is present
    assert "rerank" not in at.query_params  # the default: nothing in the URL
    idx = Index.open(fake_index, encoder=FakeEncoder(), reranker=str(tiny_reranker))
    expected = idx.search("coffee beans roasted water", mode="bm25", k=5, rerank=True).hits
    shown = column_cards(at)["BM25"]
    assert len(shown) == len(expected)
    for hit, card in zip(expected, shown, strict=True):
        label = (
            "new"
            if hit.prev_rank > 5
            else "="
            if hit.prev_rank == hit.rank
            else f"▲{hit.prev_rank - hit.rank}"
            if hit.prev_rank > hit.rank
            else f"▼{hit.rank - hit.prev_rank}"
        )
        assert f">{label}</span>" in card, (label, card[:200])
        assert hit.doc_path in card
    assert any("rerank" in t for t in texts(at.caption) if "total" in t)


# ------------------------------------------------------------------------------------------------ index page
def allow(monkeypatch: pytest.MonkeyPatch, *roots: Path) -> None:
    """What ``e5search app --allow-root ROOT ...`` sets: the folders the Index and Evaluation pages may read."""
    monkeypatch.setenv("E5SEARCH_ALLOW_ROOTS", os.pathsep.join(str(r) for r in roots))


def to_index_page(at: AppTest) -> AppTest:
    at.radio(key="page").set_value("index").run()
    assert not at.exception, at.exception
    return at


def test_index_page_indexes_a_folder_and_lists_skipped_files(monkeypatch, tmp_path, corpus_copy):
    index_dir = tmp_path / "new-index"
    allow(monkeypatch, tmp_path)
    at = to_index_page(start(monkeypatch, index_dir))
    assert any("no index at" in t for t in texts(at.info))
    at.text_input(key="folder").input(str(corpus_copy)).run()
    assert "recipes" in at.selectbox(key="subfolder").options
    at.text_input(key="target_index").input(str(index_dir)).run()
    click(at, "Index this folder")
    [summary] = [t for t in texts(at.success) if t.startswith("Indexed")]
    assert "10 added" in summary and "1 skipped" in summary
    skipped = at.dataframe[0].value
    assert list(skipped["path"]) == ["notes.xyz"]
    assert "unsupported file type '.xyz'" in skipped["reason"][0]
    assert Layout(index_dir).exists()
    # the manifest, languages and sizes of the new index; the search page now searches it
    assert [m.label for m in at.metric] == ["files", "documents", "chunks", "on disk"]
    at.radio(key="page").set_value("search").run()
    search(at, "Волга река")
    assert "ru_volga.txt" in column_cards(at)["BM25"][0]


def test_reindex_reads_only_what_changed(monkeypatch, tmp_path, corpus_copy):
    index_dir = tmp_path / "index"
    allow(monkeypatch, tmp_path)
    at = to_index_page(start(monkeypatch, index_dir))
    at.text_input(key="folder").input(str(corpus_copy)).run()
    at.text_input(key="target_index").input(str(index_dir)).run()
    click(at, "Index this folder")
    (corpus_copy / "de_kaffee.txt").write_text("Kaffee und Kuchen am Nachmittag.\n", encoding="utf-8")
    (corpus_copy / "zh_tea.txt").unlink()
    click(at, f"Re-index {md(corpus_copy)}")
    [summary] = [t for t in texts(at.success) if t.startswith("Indexed")]
    assert "0 added, 1 updated, 1 removed, 9 unchanged" in summary


def test_remove_index_asks_for_confirmation(monkeypatch, tmp_path, corpus_copy):
    index_dir = tmp_path / "index"
    allow(monkeypatch, tmp_path)
    at = to_index_page(start(monkeypatch, index_dir))
    at.text_input(key="folder").input(str(corpus_copy)).run()
    at.text_input(key="target_index").input(str(index_dir)).run()
    click(at, "Index this folder")
    click(at, "Remove this index ...")
    assert any("Remove the index at" in t for t in texts(at.warning))
    click(at, "Cancel")
    assert Layout(index_dir).exists()
    click(at, "Remove this index ...")
    click(at, "Yes, remove the index")
    assert any(t.startswith("Removed the index") for t in texts(at.success))
    assert not index_dir.exists()
    assert corpus_copy.joinpath("en_coffee.md").exists()  # the documents are not touched


@pytest.mark.parametrize(
    ("folder", "message"),
    [
        ("/no/such/folder", "does not exist"),
        (str(CORPUS / "en_coffee.md"), "is a file"),
    ],
)
def test_bad_folder_gets_a_clear_message(monkeypatch, tmp_path, folder, message):
    allow(monkeypatch, Path("/no"), CORPUS)
    at = to_index_page(start(monkeypatch, tmp_path / "index"))
    at.text_input(key="folder").input(folder).run()
    assert any(message in t for t in texts(at.warning))
    [button] = [b for b in at.button if b.label == "Index this folder"]
    assert button.disabled


# ------------------------------------------------------------------------------------------------ evaluation page
def test_evaluation_page_scores_the_retrievers(monkeypatch, tmp_path):
    allow(monkeypatch, BEIR)
    at = start(monkeypatch, tmp_path / "index")
    at.radio(key="page").set_value("evaluate").run()
    at.text_input(key="eval_folder").input(str(BEIR)).run()
    click(at, "Run evaluation")
    summary = at.dataframe[0].value
    assert list(summary["retriever"]) == ["bm25", "dense", "hybrid"]
    assert summary["ndcg@10"].between(0, 1).all()
    per_query = at.dataframe[1].value
    assert sorted(per_query["query id"]) == ["q1", "q2", "q3", "q4"]
    assert set(per_query["wins"]) <= {"bm25", "dense", "tie"}


def test_switching_pages_keeps_the_search(monkeypatch, fake_index):
    at = search(start(monkeypatch, fake_index), "coffee")
    at.selectbox(key="k").set_value(5).run()
    to_index_page(at)
    at.radio(key="page").set_value("search").run()
    assert at.text_input(key="query").value == "coffee"
    assert at.selectbox(key="k").value == 5
    assert all(1 <= len(c) <= 5 for c in column_cards(at).values())
    assert len(column_cards(at)["Dense (E5)"]) == 5
