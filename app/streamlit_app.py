"""The web app's pages: ``e5search app [--index DIR]`` runs ``app/asgi.py``, which serves this script (and app/files.py).

Layout only. Pages: Search (BM25 | Dense (E5) | Hybrid side by side), Index (index a folder on the server,
inspect, re-index or remove the index) and Evaluation (BEIR metrics per retriever). The page, the query and the
search settings live in the URL, so a search can be shared. A run reached by a Host name the app does not answer
stops at an error (:mod:`app.access`).
"""

from __future__ import annotations

import logging

import streamlit as st

from app import access, eval_page, index_page, render, search_page, urlstate
from indexer.errors import E5SearchError

logger = logging.getLogger(__name__)

PAGE_TITLES = {"search": "Search", "index": "Index", "evaluate": "Evaluation"}
_PAGES = {"search": search_page.show, "index": index_page.show, "evaluate": eval_page.show}
ANY = search_page.ANY
# Widget values kept across pages (Streamlit forgets the value of a widget that a run does not draw).
_KEPT = (
    "query",
    "k",
    "rerank",
    "lang",
    "file_type",
    "path_prefix",
    "opened",
    "folder",
    "target_index",
    "eval_folder",
)


def _init_state() -> None:
    """On a session's first run, take the page and the search settings from the URL."""
    ss = st.session_state
    if "index_dir" in ss:
        for key in _KEPT:
            if key in ss:
                ss[key] = ss[key]
        return
    s = urlstate.from_params(st.query_params.to_dict())
    ss.update(
        page=s.page,
        query=s.query,
        k=s.k,
        rerank=s.rerank,
        lang=s.lang or ANY,
        file_type=s.file_type or ANY,
        path_prefix=s.path_prefix or "",
        opened=s.opened,
        index_dir=str(access.app_index_dir()),
    )


def _sync_url() -> None:
    ss = st.session_state
    state = urlstate.PageState(
        page=ss.page,
        query=ss.get("query", ""),
        k=ss.get("k", 10),
        rerank=None if ss.get("rerank") == ss.get("rerank_default") else ss.get("rerank"),
        lang=None if ss.get("lang", ANY) == ANY else ss.lang,
        file_type=None if ss.get("file_type", ANY) == ANY else ss.file_type,
        path_prefix=ss.get("path_prefix") or None,
        opened=ss.get("opened"),
    )
    params = urlstate.to_params(state)
    if params != st.query_params.to_dict():
        st.query_params.from_dict(params)


def _refuse_foreign_host() -> None:
    """Stop the run when the browser reached the app by a name it does not answer (DNS rebinding)."""
    allowed = access.allowed_hosts()
    if not access.host_allowed(st.context.headers.get("Host"), allowed):
        st.error(
            render.md(f"This app answers only by the names {', '.join(allowed)}: open it by one of them, ")
            + "or start it with `e5search app --host NAME`."
        )
        st.stop()


def main() -> None:
    st.set_page_config(page_title="e5search", page_icon="🔎", layout="wide")
    _refuse_foreign_host()
    st.html(render.CSS)
    _init_state()
    with st.sidebar:
        st.title("e5search")
        st.radio("Page", urlstate.PAGES, format_func=PAGE_TITLES.__getitem__, key="page")
        st.caption(f"Index: {render.md(st.session_state.index_dir)}")
    try:
        _PAGES[st.session_state.page]()
    except E5SearchError as exc:
        st.error(render.md(exc))
    except Exception:  # a bug: the log gets the traceback, the page a sentence
        logger.exception("unexpected error on the %s page", st.session_state.page)
        st.error("Something went wrong on this page; the details are in the server's log.")
    _sync_url()


if __name__ == "__main__":
    main()
