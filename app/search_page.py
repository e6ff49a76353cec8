"""The Search page: one query, BM25 | Dense (E5) | Hybrid side by side, the hybrid column with the weights its
fusion used for the query. Layout only; see app.service."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from app import files, render, service, urlstate
from app.compare import agreements
from app.render import COLUMN_TITLES, esc, md
from indexer.errors import E5SearchError
from indexer.storage.catalog import page_of

ANY = "any"
FUSION_HELP = (
    "How much each list counts in the hybrid column for this query. By default BM25's share is predicted from "
    "the query's language against its candidates' languages and from how the two lists look (a flat BM25 list "
    "means no real word match, e.g. across languages); plain RRF gives both lists an equal say"
)


def _go(page: str) -> None:
    st.session_state.page = page


def _use_example() -> None:
    ss = st.session_state
    if ss.get("example"):
        ss.query = ss.example
        ss.opened = None
    ss.example = None


def _open(chunk_id: int | None) -> None:
    st.session_state.opened = chunk_id


def _query_row(examples: list[service.Example]) -> None:
    st.text_input(
        "Query",
        key="query",
        placeholder="Ask in any language, e.g. Wie entsteht Kaffee?",
        on_change=_open,
        args=(None,),
    )
    if examples:
        labels = {e.text: md(f"{e.text} · {e.lang}" if e.lang else e.text) for e in examples}
        st.pills(
            "Example queries",
            list(labels),
            format_func=labels.__getitem__,
            key="example",
            on_change=_use_example,
            help="Queries for this corpus; some are answered in another language",
        )
        current = next((e for e in examples if e.text == st.session_state.query.strip()), None)
        if current is not None and (current.expected or current.note):
            answer = f"answered by {', '.join(current.expected)}" if current.expected else ""
            st.caption(md(" · ".join(p for p in ("Example query", current.note, answer) if p)))


def _options(counts: dict[str, int], current: str) -> list[str]:
    return [ANY, *sorted(counts), *([current] if current not in counts and current != ANY else [])]


def _settings_row(stats: dict, has_reranker: bool, why_not: str | None) -> None:
    ss = st.session_state
    k_col, lang_col, type_col, prefix_col, rerank_col = st.columns([1, 1.3, 1.3, 2, 2.4])
    k_col.selectbox("k", urlstate.K_CHOICES, key="k", help="hits per column")
    lang_col.selectbox(
        "Language",
        _options(stats["chunk_languages"], ss.lang),
        key="lang",
        help="only chunks in this language",
    )
    type_col.selectbox("File type", _options(stats["file_types"], ss.file_type), key="file_type")
    prefix_col.text_input(
        "Path prefix",
        key="path_prefix",
        placeholder="e.g. recipes/",
        help="only documents under this path (relative to the indexed folder)",
    )
    ss.rerank_default = has_reranker  # on by default when a reranker is present (the URL keeps a change)
    if not has_reranker:
        ss.rerank = False
    elif ss.get("rerank") is None:
        ss.rerank = True
    rerank_col.toggle(
        "Rerank (cross-encoder)",
        key="rerank",
        disabled=not has_reranker,
        help=md(why_not)
        if why_not
        else "rescore the three columns' top candidates with the cross-encoder, in one pass over their union; "
        "▲/▼ show how far a hit moved, 'new' that it was below the top k before",
    )
    if why_not:
        rerank_col.caption(f"Reranking is off: {md(why_not)}")


def _agreement_row(columns: dict[str, service.Column]) -> None:
    ids = {COLUMN_TITLES[m]: [h.chunk_id for h in c.hits] for m, c in columns.items() if c.error is None}
    for col, a in zip(st.columns(3), agreements(ids), strict=False):
        tau = "n/a (fewer than 2 shared)" if a.tau is None else f"{a.tau:+.2f}"
        col.metric(
            f"{a.left} ∩ {a.right}",
            f"{a.shared}/{a.k} shared",
            help="hits both columns return in their top k; Kendall τ compares their order",
        )
        col.caption(f"Kendall τ on the shared hits: {tau}")


@dataclass
class _Slots:
    """Where a column's timing line and cards are drawn, to redraw them with the best sentences marked."""

    timing: DeltaGenerator | None = None
    cards: list[DeltaGenerator] = field(default_factory=list)


def _column(column: service.Column, k: int, filtered: bool) -> _Slots:
    st.subheader(COLUMN_TITLES[column.mode])
    if column.error:
        st.warning(md(column.error))
        return _Slots()
    if column.fusion is not None:
        st.caption(md(render.fusion_line(column.fusion)), help=FUSION_HELP)
    timing = st.empty()
    timing.caption(render.timing_line(column.timings_ms))
    slots = _Slots(timing)
    if not column.hits:
        st.info("No results" + (" with these filters." if filtered else "."))
    for hit, snippet in zip(column.hits, column.snippets, strict=True):
        slots.cards.append(st.empty())
        slots.cards[-1].html(render.hit_card(hit, snippet, k))
        st.button(
            "Open",
            key=f"open-{column.mode}-{hit.rank}",
            on_click=_open,
            args=(hit.chunk_id,),
            type="tertiary",
            help="show the whole chunk, its neighbours and the document's metadata",
        )
    return slots


def _mark_sentences(idx, key, request: service.Request, columns: dict, slots: dict[str, _Slots]) -> None:
    """Redraw the dense and hybrid cards with each hit's best-matching sentence marked (after the results)."""
    for mode, (snippets, ms) in service.sentence_snippets(idx, key, request).items():
        column = columns[mode]
        for slot, hit, snippet in zip(slots[mode].cards, column.hits, snippets, strict=True):
            slot.html(render.hit_card(hit, snippet, request.k))
        timing = slots[mode].timing
        if timing is not None:
            timing.caption(render.timing_line({**column.timings_ms, "sentences": ms}))


def _opened(idx) -> None:
    chunk_id = st.session_state.get("opened")
    if chunk_id is None:
        return
    with st.sidebar:
        st.divider()
        st.button("Close", on_click=_open, args=(None,), key="close-opened")
        try:
            d = service.chunk_details(idx, chunk_id)
        except E5SearchError as exc:
            st.warning(md(exc))
            return
        doc = d["document"]
        st.html(f"<h4>{esc(doc['title'] or doc['path'])}</h4>")
        page = (
            page_of(doc["file_type"], d["heading_path"]) if doc["file_type"] == "pdf" else None
        )  # a viewer's #page
        st.link_button(
            "Open the file" + (f" at p. {page}" if page is not None else ""),
            files.file_url(idx.dir, chunk_id, page),
            icon=":material/open_in_new:",
            help="the original file, served by this app (PDFs open at the hit's page)",
        )
        if d["heading_path"]:
            st.html(f"<div class='e5-path'>{' › '.join(esc(h) for h in d['heading_path'])}</div>")
        st.html(render.text_block(d["text"]))
        for n in d["neighbours"]:
            where = "before" if n["ordinal"] < d["ordinal"] else "after"
            st.caption(f"Chunk {n['ordinal'] + 1} of {doc['n_chunks']} ({where})")
            st.html(render.text_block(n["text"], "e5-neighbour"))
        meta = {
            "path": doc["path"],
            "chunk": f"{d['ordinal'] + 1} of {doc['n_chunks']}",
            "chunk language": d["lang"],
            "document language": doc["lang"],
            "file type": doc["file_type"],
            "characters": doc["n_chars"],
            "file size": render.megabytes(doc["size"]),
            "modified": render.timestamp(doc["mtime"]),
            "id": doc["external_id"],
        }
        st.dataframe(
            [{"field": k, "value": str(v)} for k, v in meta.items() if v is not None],
            hide_index=True,
            width="stretch",
        )


def show() -> None:
    ss = st.session_state
    try:
        idx = service.open_index(Path(ss.index_dir))
    except E5SearchError as exc:
        st.info(md(exc))
        st.button("Go to the Index page", on_click=_go, args=("index",))
        return
    key = service.index_key(idx)
    stats = service.index_stats(idx, key)
    reranker_obj, why_not = service.reranker()
    _query_row(service.example_queries(stats.get("source_root")))
    _settings_row(stats, reranker_obj is not None, why_not)
    query = ss.query.strip()
    if not query:
        st.info("Type a query above (any language) and press Enter, or pick an example.")
        return
    lang, file_type = (None if v == ANY else v for v in (ss.lang, ss.file_type))
    prefix = ss.path_prefix.strip() or None
    request = service.Request(query, ss.k, ss.rerank, lang, file_type, prefix)
    columns = service.search_columns(idx, key, request)
    errors = {c.error for c in columns.values()}
    if None not in errors and len(errors) == 1:
        st.error(md(errors.pop()))
        return
    _agreement_row(columns)
    passes = {c.rerank for c in columns.values() if c.rerank is not None}
    if passes:
        rp = passes.pop()
        st.caption(
            f"Reranked in one pass: {rp.scored} distinct candidates (the three columns hold {rp.candidates}) "
            f"in {rp.ms:.0f} ms"
        )
    slots: dict[str, _Slots] = {}
    for col, column in zip(st.columns(3, gap="medium"), columns.values(), strict=True):
        with col:
            slots[column.mode] = _column(column, ss.k, bool(lang or file_type or prefix))
    _opened(idx)
    _mark_sentences(idx, key, request, columns, slots)
