"""The Evaluation page: BEIR metrics per retriever, a bar chart, and which queries each retriever wins.

Layout only; the numbers come from the eval package through :mod:`app.evaluation`. Like the Index page, it
reads only dataset folders under the app's ``--allow-root`` folders (:mod:`app.access`).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import access, evaluation, indexing, service
from app.render import md
from indexer.errors import E5SearchError


def _form() -> None:
    ss = st.session_state
    roots = access.allowed_roots()
    if not roots:
        st.info(
            "Evaluating from this page is off: the app was started without --allow-root. Start it with "
            f"`{access.ALLOW_ROOT_FIX}` to evaluate datasets under DIR here, or run `e5search eval`."
        )
        return
    st.text_input(
        "BEIR dataset folder on the server",
        key="eval_folder",
        placeholder="/path/to/scifact (corpus.jsonl, queries.jsonl, qrels/test.tsv)",
    )
    if not ss.get("eval_folder", "").strip():
        st.info("Give a folder in BEIR layout: corpus.jsonl, queries.jsonl and qrels/SPLIT.tsv.")
        return
    try:
        folder = indexing.resolve_folder(ss.eval_folder, roots)
    except E5SearchError as exc:
        st.warning(md(exc))
        return
    splits = evaluation.splits(folder)
    if not splits:
        st.warning(f"{md(folder)} has no qrels/SPLIT.tsv: is it a BEIR dataset folder?")
        return
    has_reranker = service.reranker()[0] is not None
    split_col, retr_col, max_col = st.columns([1, 3, 1])
    split = split_col.selectbox("Split", splits, index=splits.index("test") if "test" in splits else 0)
    choices = evaluation.retriever_choices(has_reranker)
    retrievers = retr_col.multiselect(
        "Retrievers", choices, default=[c for c in ("bm25", "dense", "hybrid") if c in choices]
    )
    max_queries = max_col.number_input("Max queries (0 = all)", min_value=0, value=0, step=10)
    if st.button("Run evaluation", type="primary", disabled=not retrievers):
        with st.spinner(
            f"Indexing {md(folder.name)} (cached after the first run) and running {len(retrievers)} "
            "retrievers ..."
        ):
            try:
                ss.eval_result = evaluation.run(folder, split, retrievers, int(max_queries) or None)
            except E5SearchError as exc:
                st.error(md(exc))


def _three_decimals(columns) -> dict:
    return {c: st.column_config.NumberColumn(format="%.3f") for c in columns}


def _results(result: dict) -> None:
    st.subheader(
        f"{md(result['dataset'])} ({md(result['split'])}): {result['n_queries']} queries, {result['n_docs']} documents"
    )
    rows = evaluation.summary_rows(result)
    st.dataframe(rows, hide_index=True, width="stretch", column_config=_three_decimals(evaluation.HEADLINE))
    chart = pd.DataFrame(
        [{m: r[m] for m in evaluation.HEADLINE} for r in rows], index=[r["retriever"] for r in rows]
    )
    st.bar_chart(chart, stack=False)
    names = list(result["results"])
    if len(names) < 2:
        return
    st.subheader("Per query")
    metric_col, left_col, right_col = st.columns(3)
    metric = metric_col.selectbox("Metric", evaluation.HEADLINE, key="eval_metric")
    left = left_col.selectbox("Retriever A", names, index=0, key="eval_left")
    right = right_col.selectbox("Retriever B", [n for n in names if n != left], key="eval_right")
    per_query = evaluation.per_query_rows(result, metric, left, right)
    wins = evaluation.win_counts(per_query, left, right)
    st.caption(
        f"{left} wins {wins[left]} queries, {right} wins {wins[right]}, {wins[evaluation.TIE]} ties "
        "(largest differences first)"
    )
    show = st.radio(
        "Show",
        ["all", left, right, evaluation.TIE],
        horizontal=True,
        key="eval_filter",
        format_func=lambda w: w if w in ("all", evaluation.TIE) else f"{w} wins",
    )
    st.dataframe(
        [r for r in per_query if show == "all" or r["wins"] == show],
        hide_index=True,
        width="stretch",
        column_config=_three_decimals((left, right, "difference")),
    )


def show() -> None:
    st.header("Evaluation")
    why_not = evaluation.unavailable()
    if why_not:
        st.info(md(why_not))
        return
    _form()
    if st.session_state.get("eval_result"):
        _results(st.session_state.eval_result)
