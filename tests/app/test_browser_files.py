"""In a real headless browser: a PDF hit opens the original file at its page, and the Index page's watch toggle
keeps the index in step with the folder until it is switched off.

``e5search app`` on a loopback port with ``--allow-root`` over a small folder (a generated 3-page PDF and two text
files) indexed with the real default model; Playwright drives Debian's Chromium.
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import quote_plus

import pytest

from tests.app.live import NEEDS_CHROMIUM, chromium, free_port, serving
from tests.fixtures.make_fixtures import pdf_bytes

PAGES = [
    ["Glaciers carve deep valleys over thousands of years."],
    ["A terminal moraine marks the furthest advance of the glacier."],
    ["Meltwater lakes form behind the ice in spring."],
]
NEW_FILE = "Rock flour from glaciers turns meltwater rivers milky and turquoise."

pytestmark = [
    pytest.mark.browser,
    pytest.mark.model,
    NEEDS_CHROMIUM,
]


@pytest.fixture()
def app_on_folder(tmp_path: Path, default_model_path: Path):
    from indexer.build.job import build_index
    from indexer.config import ModelConfig
    from indexer.encoding.encoder import Encoder

    docs = tmp_path / "root" / "docs"
    docs.mkdir(parents=True)
    (docs / "ice.pdf").write_bytes(pdf_bytes(PAGES, title="Glaciers and Ice Ages"))
    (docs / "tea.txt").write_text("Green tea from Hangzhou is famous.\n", encoding="utf-8")
    (docs / "bread.txt").write_text("Sourdough bread needs a starter.\n", encoding="utf-8")
    index_dir = tmp_path / "root" / "index"
    build_index(docs, index_dir, encoder=Encoder(ModelConfig(model=str(default_model_path))))
    port = free_port()
    cmd = [sys.executable, "-m", "e5search", "app", "--index", str(index_dir), "--port", str(port)]
    cmd += ["--headless", "--allow-root", str(tmp_path / "root")]
    env = {"E5SEARCH_HOME": str(default_model_path.parents[1])}
    with serving(cmd, port, tmp_path / "server.log", env=env):
        yield f"http://127.0.0.1:{port}", docs


@pytest.fixture()
def page(tmp_path: Path):
    pytest.importorskip("playwright.sync_api")
    with chromium(tmp_path / "chromium-profile") as context:
        yield context.new_page()


def _search(page, url: str, query: str, columns: int = 3) -> None:
    """Search by the page's URL; until ``columns`` columns show hits (BM25 shows none without a shared word)."""
    page.goto(f"{url}/?rerank=0&q={quote_plus(query)}", wait_until="domcontentloaded")  # a shared search link
    page.wait_for_function(
        "n => [...document.querySelectorAll('[data-testid=stColumn]')].filter(c => c.querySelector('.e5-hit'))"
        ".length >= n",
        arg=columns,
        timeout=120_000,
    )
    _idle(page)


def _idle(page) -> None:
    """Until the page's script run has finished (a click during a run can be lost to the rerun)."""
    page.wait_for_selector("[data-testid='stStatusWidget']", state="detached", timeout=120_000)


def test_a_pdf_hit_opens_the_file_at_its_page(app_on_folder, page):
    url, docs = app_on_folder
    _search(page, url, "terminal moraine")
    columns = page.locator('[data-testid="stColumn"]').filter(has=page.locator(".e5-hit"))
    hybrid = columns.nth(2)  # BM25 | Dense (E5) | Hybrid
    assert hybrid.inner_text().startswith("Hybrid")
    card = hybrid.locator(".e5-hit").first
    assert "ice.pdf" in card.inner_text() and "p. 2" in card.inner_text()
    page.wait_for_timeout(2_000)  # the run goes on after the cards (sentence marks); its status shows late
    _idle(page)
    button = page.get_by_role("link", name="Open the file at p. 2")
    for attempt in range(
        3
    ):  # a click that lands while a run is being replaced may be dropped by the frontend
        hybrid.get_by_role("button", name="Open").first.click()
        try:
            button.wait_for(timeout=30_000)
            break
        except Exception:
            if attempt == 2:
                raise
    href = button.get_attribute("href")
    assert href is not None and href.startswith("/e5search/file/") and href.endswith("#page=2")
    response = page.request.get(url + href.split("#")[0])  # what the browser's PDF viewer receives
    assert response.status == 200 and response.headers["content-type"] == "application/pdf"
    assert response.body() == (docs / "ice.pdf").read_bytes()


def test_the_watch_toggle_keeps_search_in_step_with_the_folder(app_on_folder, page):
    url, docs = app_on_folder
    page.goto(url + "/?page=index", wait_until="domcontentloaded")
    toggle = page.get_by_text("Watch the folder")
    toggle.wait_for(timeout=120_000)
    toggle.click()
    status = page.get_by_text("Watching ")
    status.wait_for(timeout=60_000)
    page.wait_for_function("document.body.innerText.includes('1 run;')", timeout=120_000)  # the catch-up run
    (docs / "flour.txt").write_text(NEW_FILE + "\n", encoding="utf-8")
    page.wait_for_function("document.body.innerText.includes('2 runs;')", timeout=120_000)  # no page reload
    assert "added 1" in status.inner_text()
    _search(page, url, "Why are glacial rivers milky?")
    page.wait_for_function("document.body.innerText.includes('flour.txt')", timeout=60_000)

    page.goto(url + "/?page=index", wait_until="domcontentloaded")
    page.get_by_text("Watch the folder").wait_for(timeout=120_000)
    page.wait_for_function("document.body.innerText.includes('Watching ')", timeout=60_000)  # still on
    page.get_by_text("Watch the folder").click()
    page.wait_for_function("!document.body.innerText.includes('Watching ')", timeout=60_000)
    (docs / "late.txt").write_text("Written after watching stopped.\n", encoding="utf-8")
    page.wait_for_timeout(5_000)  # long past the watcher's quiet period: nothing may index it now
    _search(page, url, "written after watching stopped", columns=2)
    assert "late.txt" not in page.locator("body").inner_text()
