"""The original file behind a hit, served by the app itself: ``GET /e5search/file/<chunk_id>?index=DIR``.

A hit's "Open the file" link points here, with ``#page=N`` for a PDF hit, so the browser's viewer opens the
file at the hit's page. What is served, and to whom:

- only the file a chunk of that index was read from (looked up in the index's SQLite), resolved inside the
  index's source folder: a file since replaced by a link out of it, or gone, is refused;
- only for the app's own ``--index`` or an index under its ``--allow-root`` folders (:func:`app.access.check_index`),
  and only to the Host names the app answers (:func:`app.access.host_allowed`, as the pages);
- PDF, plain text and images inline; HTML and SVG inline in a sandbox (``Content-Security-Policy: sandbox``: no
  scripts, no access to the app's origin); every other type as a download. ``nosniff`` always.

The route is registered by :mod:`app.asgi` (``st.App``), which ``e5search app`` runs. Refusals are one line of
plain text with the status: 403 (host, index outside the allowed folders, file outside the source folder), 404
(no such chunk, no index, file gone).
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from urllib.parse import quote

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from app import access
from indexer.errors import ConfigError, E5SearchError
from indexer.storage import catalog
from indexer.storage.store import open_engine, read_index_manifest, read_manifest

ROUTE = "/e5search/file"
_INLINE = {"application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp", "text/plain"}
_SANDBOXED = {
    "text/html",
    "application/xhtml+xml",
    "image/svg+xml",
}  # shown, but with no scripts and no origin
_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class Refused(E5SearchError):
    """A file request the app does not answer; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def file_url(index_dir: str | Path, chunk_id: int, page: int | None = None) -> str:
    """The link that opens the file a chunk came from (at ``page`` in a PDF viewer), relative to the app.

    >>> file_url("/srv/idx", 7, page=3)
    '/e5search/file/7?index=/srv/idx#page=3'
    """
    url = f"{ROUTE}/{chunk_id}?index={quote(str(index_dir))}"
    return url + (f"#page={page}" if page is not None else "")


def locate(index_dir: Path, chunk_id: int, roots: tuple[Path, ...]) -> Path:
    """The file chunk ``chunk_id`` of the index at ``index_dir`` was read from; :class:`Refused` otherwise."""
    try:
        index_dir = access.check_index(index_dir, roots)
    except ConfigError as exc:
        raise Refused(403, str(exc)) from None
    try:
        read_index_manifest(index_dir)  # an e5search index that finished a run, checked read-only first
        engine = open_engine(index_dir)
        try:
            with Session(engine) as session:  # one snapshot: the manifest's root and the chunk's file agree
                source, relative = (
                    read_manifest(session).get("source_root"),
                    catalog.source_file(session, chunk_id),
                )
        finally:
            engine.dispose()
    except E5SearchError as exc:
        raise Refused(404, f"{exc}: search again, the index has changed") from None
    if not source:
        raise Refused(404, f"the index at {index_dir} records no source folder")
    root = Path(source).resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise Refused(403, f"{relative} now leads outside {root}: it is not served")
    if not path.is_file():
        raise Refused(404, f"{path} is gone: re-index {root}")
    return path


def _media(path: Path) -> tuple[str, str, dict[str, str]]:
    """Media type, disposition and extra headers for serving ``path``."""
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if kind.startswith("text/") and kind not in _SANDBOXED:
        kind = "text/plain"  # Markdown, CSV, source code: shown as text, never interpreted
    if kind in _SANDBOXED:
        return kind, "inline", {"Content-Security-Policy": "sandbox"}
    if kind in _INLINE:
        return kind, "inline", {} if kind == "application/pdf" else {"Content-Security-Policy": "sandbox"}
    return kind, "attachment", {}


def serve_file(request: Request) -> Response:
    """The route: a sync endpoint (Starlette runs it on a worker thread, so SQLite never blocks the loop)."""
    try:
        if not access.host_allowed(request.headers.get("host"), access.allowed_hosts()):
            raise Refused(
                403, "this app answers only by the names it was started with (e5search app --host NAME)"
            )
        try:
            chunk_id = int(request.path_params["chunk_id"])
        except ValueError:
            raise Refused(404, "no such chunk: the link is malformed") from None
        index = request.query_params.get("index")
        if not index:
            raise Refused(404, "no index given: open the file from a search result")
        path = locate(Path(index), chunk_id, access.allowed_roots())
    except Refused as exc:
        return PlainTextResponse(str(exc) + "\n", status_code=exc.status, headers=_HEADERS)
    kind, disposition, extra = _media(path)
    if kind == "text/plain":
        kind = "text/plain; charset=utf-8"
    return FileResponse(
        path,
        media_type=kind,
        filename=path.name,
        content_disposition_type=disposition,
        headers={**_HEADERS, **extra},
    )


def routes() -> list[Route]:
    return [Route(ROUTE + "/{chunk_id}", serve_file, methods=["GET", "HEAD"])]
