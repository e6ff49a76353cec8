"""The original file behind a hit (``GET /e5search/file/<chunk>?index=DIR``), over HTTP from a real ``e5search app``.

The server is the real command on a free 127.0.0.1 port; the indexes are built with the fake encoder (the route
reads SQLite only, never the model). Each refusal is checked with the status and the one-line reason it answers.
"""

from __future__ import annotations

import http.client
import os
import sqlite3
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from app import files
from indexer.build.job import build_index
from tests.app.live import free_port, serving
from tests.fakes import FakeEncoder
from tests.fixtures.make_fixtures import make_docx, pdf_bytes

HTML = (
    "<html><body><h1>Moraines</h1><script>document.title = 'ran'</script><p>till and gravel</p></body></html>"
)


def _chunks(index_dir: Path) -> dict[str, int]:
    """file path -> the first chunk id read from it."""
    with sqlite3.connect(index_dir / "index.sqlite") as db:
        rows = db.execute(
            "SELECT f.path, MIN(c.id) FROM chunks c JOIN documents d ON d.id = c.document_id "
            "JOIN files f ON f.id = d.file_id GROUP BY f.path"
        )
        return dict(rows.fetchall())


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """An app serving ``root/own`` (its --index) with ``root`` allowed; a second index under the root; a third
    index outside it."""
    root = tmp_path_factory.mktemp("files")
    docs = root / "docs"
    (docs / "sub dir").mkdir(parents=True)
    (docs / "ice.pdf").write_bytes(
        pdf_bytes([["Glaciers carve valleys."], ["A terminal moraine."]], title="Ice")
    )
    (docs / "page.html").write_text(HTML, encoding="utf-8")
    (docs / "sub dir" / "notes ünïcode.md").write_text("# Notes\n\nEskers are ridges.\n", encoding="utf-8")
    make_docx(docs / "report.docx")
    (docs / "secret.txt").write_text("Drumlins are hills of till.\n", encoding="utf-8")
    (docs / "gone.txt").write_text("Kettle lakes fill hollows.\n", encoding="utf-8")
    build_index(docs, root / "own", encoder=FakeEncoder())
    build_index(docs, root / "other", encoder=FakeEncoder())
    outside = tmp_path_factory.mktemp("outside")
    build_index(docs, outside / "idx", encoder=FakeEncoder())
    port = free_port()
    cmd = [sys.executable, "-m", "e5search", "app", "--index", str(root / "own"), "--port", str(port)]
    cmd += ["--headless", "--allow-root", str(root)]
    with serving(cmd, port, root / "server.log"):
        yield port, root, outside / "idx"


def get(port: int, url: str, host: str = "127.0.0.1") -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)  # loopback, whatever Host says
    try:
        conn.request("GET", url, headers={"Host": f"{host}:{port}"})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def link(index_dir: Path, path: str, page: int | None = None) -> str:
    return files.file_url(index_dir, _chunks(index_dir)[path], page).split("#")[0]


def test_a_pdf_is_served_inline_for_the_viewer_to_open_at_the_page(served):
    port, root, _ = served
    url = files.file_url(root / "own", _chunks(root / "own")["ice.pdf"], page=2)
    assert url.endswith("#page=2")
    status, headers, body = get(port, url.split("#")[0])
    assert status == 200
    assert headers["content-type"] == "application/pdf"
    assert headers["content-disposition"].startswith("inline")
    assert headers["x-content-type-options"] == "nosniff"
    assert body == (root / "docs" / "ice.pdf").read_bytes()


def test_html_is_sandboxed_text_is_plain_office_files_download(served):
    port, root, _ = served
    status, headers, body = get(port, link(root / "own", "page.html"))
    assert (status, headers["content-type"].split(";")[0]) == (200, "text/html")
    assert headers["content-security-policy"] == "sandbox"  # its script cannot run as the app's origin
    assert body.decode() == HTML
    status, headers, body = get(port, link(root / "own", "sub dir/notes ünïcode.md"))
    assert (status, headers["content-type"]) == (200, "text/plain; charset=utf-8")
    assert body.decode() == "# Notes\n\nEskers are ridges.\n"
    status, headers, _ = get(port, link(root / "own", "report.docx"))
    assert status == 200 and headers["content-disposition"].startswith("attachment")


def test_another_index_under_an_allowed_root_is_served(served):
    port, root, _ = served
    status, _, body = get(port, link(root / "other", "secret.txt"))
    assert (status, body) == (200, b"Drumlins are hills of till.\n")


def test_refusals_name_the_reason(served):
    port, root, outside = served
    own = quote(str(root / "own"))
    cases = [
        (link(outside, "secret.txt"), 403, "outside the allowed folders"),
        (f"{files.ROUTE}/999999?index={own}", 404, "chunk 999999 is not in this index"),
        (f"{files.ROUTE}/x?index={own}", 404, "malformed"),
        (f"{files.ROUTE}/1", 404, "no index given"),
        (f"{files.ROUTE}/1?index={quote(str(root / 'docs'))}", 404, "no index at"),
    ]
    for url, status, reason in cases:
        got, headers, body = get(port, url)
        assert (got, headers["content-type"]) == (status, "text/plain; charset=utf-8"), url
        assert reason in body.decode() and body.count(b"\n") == 1, body
    status, _, body = get(port, link(root / "own", "secret.txt"), host="evil.example")
    assert status == 403 and b"e5search app --host NAME" in body  # DNS rebinding gets no file


def test_a_file_replaced_by_a_link_out_of_the_folder_or_deleted_is_refused(served):
    port, root, _ = served
    outside_secret = root.parent / f"{root.name}-passwd"
    outside_secret.write_text("root:x:0:0\n", encoding="utf-8")
    url = link(root / "own", "secret.txt")
    (root / "docs" / "secret.txt").unlink()
    os.symlink(outside_secret, root / "docs" / "secret.txt")
    status, _, body = get(port, url)
    assert status == 403 and b"outside" in body and b"root:x" not in body
    gone = link(root / "own", "gone.txt")
    (root / "docs" / "gone.txt").unlink()
    status, _, body = get(port, gone)
    assert status == 404 and b"re-index" in body


def test_the_app_own_index_without_allowed_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Started without --allow-root, the app still opens files of its own index, and of no other."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Cirques are bowl-shaped.\n", encoding="utf-8")
    build_index(docs, tmp_path / "idx", encoder=FakeEncoder())
    build_index(docs, tmp_path / "idx2", encoder=FakeEncoder())
    monkeypatch.setenv("E5SEARCH_INDEX", str(tmp_path / "idx"))
    assert (
        files.locate(tmp_path / "idx", _chunks(tmp_path / "idx")["a.txt"], ()) == (docs / "a.txt").resolve()
    )
    with pytest.raises(files.Refused) as refused:
        files.locate(tmp_path / "idx2", 1, ())
    assert refused.value.status == 403 and "--allow-root" in str(refused.value)
