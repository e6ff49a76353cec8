"""The Index page: index a folder on the server with live progress, inspect, re-index or remove the index.

Layout only; the work is in :mod:`app.indexing`. Only folders under the app's ``--allow-root`` folders can be
indexed or browsed (:mod:`app.access`), and an index is written only to the app's own ``--index`` or under an
allowed root; without ``--allow-root`` the page shows and can remove the current index, and indexes nothing.
"""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from app import access, indexing, render, service, watching
from app.render import md
from indexer.errors import E5SearchError

_UPDATE_EVERY_S = 0.1  # progress redraws at most this often


def _descend(folder: Path) -> None:
    ss = st.session_state
    if ss.get("subfolder"):
        ss.folder = str(folder / ss.subfolder)
    ss.subfolder = None


def _up(folder: Path) -> None:
    st.session_state.folder = str(folder.parent)


def _ask_remove(ask: bool) -> None:
    st.session_state.confirm_remove = ask


def _run(folder: Path, index_dir: Path) -> None:
    """Index with a live progress bar; the summary is kept in the session and shown below."""
    clock = indexing.ProgressClock()
    last = [0.0]
    with st.status(f"Indexing {md(folder)} into {md(index_dir)} ...", expanded=True) as status:
        bar = st.progress(0.0, text="scanning the folder ...")

        def progress(stage: str, done: int, total: int) -> None:
            now = time.monotonic()
            if now - last[0] >= _UPDATE_EVERY_S or done >= total:
                last[0] = now
                bar.progress(*clock.update(stage, done, total, now))

        try:
            summary = indexing.index_folder(folder, index_dir, progress)
        except E5SearchError as exc:
            status.update(label="Indexing failed", state="error", expanded=True)
            st.error(md(exc))
            return
        status.update(
            label=f"Indexed {md(folder)} in {summary.seconds:.1f} s", state="complete", expanded=False
        )
    st.session_state.index_dir = str(index_dir)
    st.session_state.last_summary = {"folder": str(folder), "index": str(index_dir), **summary.to_json()}
    st.rerun()  # redraw the page with the new index


def _summary() -> None:
    if st.session_state.get("flash"):
        st.success(md(st.session_state.pop("flash")))
    s = st.session_state.get("last_summary")
    if not s:
        return
    st.success(
        f"Indexed {md(s['folder'])}: {s['added']} added, {s['updated']} updated, {s['removed']} removed, "
        f"{s['unchanged']} unchanged, {len(s['skipped'])} skipped; {s['chunks']} chunks in the index "
        f"({s['chunks_encoded']} encoded) in {s['seconds']:.1f} s."
    )
    if s["skipped"]:
        st.caption("Skipped files and why")
        st.dataframe(s["skipped"], hide_index=True, width="stretch")


def _target(text: str, index_dir: Path, roots: tuple[Path, ...]) -> Path:
    """Where to write the index: the app's own ``--index``, or a folder under an allowed root."""
    return access.check_index(Path(text.strip() or index_dir), roots)


def _index_form(index_dir: Path, roots: tuple[Path, ...]) -> None:
    ss = st.session_state
    st.subheader("Index a folder")
    if not roots:
        st.info(
            "Indexing from this page is off: the app was started without --allow-root. Start it with "
            f"`{access.ALLOW_ROOT_FIX}` to index folders under DIR here, or run `e5search index` on the server."
        )
        return
    st.caption("Folders under " + ", ".join(md(r) for r in roots))
    ss.setdefault("folder", str(roots[0]))
    ss.setdefault("target_index", str(index_dir))
    st.text_input("Folder on the server", key="folder", placeholder=str(roots[0]))
    folder = target = None
    if ss.folder.strip():
        try:
            folder = indexing.resolve_folder(ss.folder, roots)
        except E5SearchError as exc:
            st.warning(md(exc))
    if folder is not None:
        pick, up = st.columns([4, 1], vertical_alignment="bottom")
        pick.selectbox(
            "Subfolders",
            indexing.subfolders(folder),
            index=None,
            key="subfolder",
            placeholder="open a subfolder ...",
            on_change=_descend,
            args=(folder,),
        )
        up.button("⬆ Parent folder", on_click=_up, args=(folder,), disabled=folder in roots)
    st.text_input(
        "Index location",
        key="target_index",
        help="folder where the index is kept; an existing index there is updated incrementally",
    )
    try:
        target = _target(ss.target_index, index_dir, roots)
    except E5SearchError as exc:
        st.warning(md(exc))
    if st.button("Index this folder", type="primary", disabled=folder is None or target is None):
        assert folder is not None and target is not None
        _run(folder, target)


def _manifest_rows(stats: dict) -> list[dict]:
    model, config = stats.get("model") or {}, stats.get("config") or {}
    rows = {
        "source folder": stats["source_root"],
        "model": model.get("model"),
        "dimension": model.get("dim"),
        "model fingerprint": model.get("fingerprint"),
        "chunk size (tokens)": config.get("chunking", {}).get("chunk_size"),
        "dense index": stats["dense_kind"],
        "generation": stats["generation"],
        "updated": stats["updated_at"],
    }
    return [{"field": k, "value": str(v)} for k, v in rows.items() if v is not None]


def _current(index_dir: Path, roots: tuple[Path, ...]) -> None:
    ss = st.session_state
    st.subheader("Current index")
    st.caption(md(index_dir))
    try:
        idx = service.open_index(index_dir)
    except E5SearchError as exc:
        st.info(md(exc))
        return
    stats = service.index_stats(idx, service.index_key(idx))
    sizes = stats["sizes_on_disk"]
    for col, (label, value) in zip(
        st.columns(4),
        [
            ("files", stats["files"]),
            ("documents", stats["documents"]),
            ("chunks", stats["chunks"]),
            ("on disk", render.megabytes(sum(sizes.values()))),
        ],
        strict=True,
    ):
        col.metric(label, value)
    left, mid, right = st.columns(3)
    left.caption("Manifest")
    left.dataframe(_manifest_rows(stats), hide_index=True, width="stretch")
    mid.caption("Languages (chunks, documents)")
    langs = sorted(set(stats["chunk_languages"]) | set(stats["document_languages"]))
    mid.dataframe(
        [
            {
                "language": lg,
                "chunks": stats["chunk_languages"].get(lg, 0),
                "documents": stats["document_languages"].get(lg, 0),
            }
            for lg in langs
        ],
        hide_index=True,
    )
    right.caption("File types and sizes on disk")
    right.dataframe(
        [{"file type": t, "documents": n} for t, n in sorted(stats["file_types"].items())], hide_index=True
    )
    right.dataframe(
        [{"file": f, "size": render.megabytes(n)} for f, n in sorted(sizes.items())], hide_index=True
    )
    if stats["skipped"]:
        st.caption(f"{len(stats['skipped'])} files skipped at indexing, and why")
        st.dataframe(stats["skipped"], hide_index=True, width="stretch")
    reindex, remove = st.columns(2)
    source = stats["source_root"] or ""
    allowed = bool(source) and access.is_inside(Path(source), roots)
    why_not = f"off: {md(source)} is not under an allowed folder (`{access.ALLOW_ROOT_FIX}`)"
    if reindex.button(
        f"Re-index {md(source)}",
        help="reads only files that changed" if allowed else why_not,
        disabled=not allowed,
    ):
        try:
            _run(indexing.resolve_folder(source, roots), index_dir)
        except E5SearchError as exc:
            st.error(md(exc))
    remove.button("Remove this index ...", on_click=_ask_remove, args=(True,))
    _watch_toggle(Path(source) if allowed else None, index_dir, why_not)
    if ss.get("confirm_remove"):
        st.warning(
            f"Remove the index at {md(index_dir)}? Its files are deleted; the indexed documents are not touched."
        )
        yes, no = st.columns(2)
        if yes.button("Yes, remove the index", type="primary"):
            ss.confirm_remove = False
            removed = indexing.remove_index(index_dir)
            ss.pop("last_summary", None)
            ss.flash = f"Removed the index at {index_dir} ({len(removed)} files)."
            st.rerun()
        no.button("Cancel", on_click=_ask_remove, args=(False,))


def _set_watch(folder: Path | None, index_dir: Path) -> None:
    """The toggle's callback: start or stop watching, before the page runs again."""
    if st.session_state.watch_on and folder is not None:
        try:
            indexing.watch(indexing.resolve_folder(str(folder), access.allowed_roots()), index_dir)
        except E5SearchError as exc:
            st.session_state.flash_error = str(exc)
    else:
        watching.stop(index_dir)


def _watch_toggle(folder: Path | None, index_dir: Path, why_not: str) -> None:
    """Start/stop watching the index's folder, and a status line that follows the runs."""
    current = watching.state(index_dir)
    st.session_state.watch_on = bool(current and current.running)  # the process's state, whoever started it
    st.toggle(
        "Watch the folder",
        key="watch_on",
        on_change=_set_watch,
        args=(folder, index_dir),
        disabled=folder is None and not st.session_state.watch_on,
        help="re-index on its own a moment after files change (added, edited, renamed, deleted); "
        "keeps running when this page is closed"
        if folder is not None
        else why_not,
    )
    if st.session_state.get("flash_error"):
        st.error(md(st.session_state.pop("flash_error")))
    _watch_status(index_dir)


@st.fragment(run_every=2.0)
def _watch_status(index_dir: Path) -> None:
    current = watching.state(index_dir)
    if current is None:
        return
    if current.failure:
        st.error(md(f"Watching stopped: {current.failure}"))
    elif current.running:
        st.caption(md(current.line()))


def show() -> None:
    st.header("Index")
    index_dir = Path(st.session_state.index_dir)
    roots = access.allowed_roots()
    _summary()
    _current(index_dir, roots)
    st.divider()
    _index_form(index_dir, roots)
