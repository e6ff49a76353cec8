"""End to end in a real headless browser: ``e5search app`` on a loopback port, driven by Playwright + Chromium.

The index is built with the real default model (multilingual-e5-small, rebuilt offline) over the app's fixture
corpus; reranking uses a tiny real CrossEncoder. Debian's ``chromium`` is used (``apt-get install -y chromium``);
Playwright's own browser download is never needed. The screenshot lands in ``artifacts/app-search.png``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.app.conftest import CORPUS
from tests.app.live import NEEDS_CHROMIUM, chromium, free_port, serving

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
QUERY = "How are coffee beans roasted?"
EXPECTED = ("en_coffee.md", "recipes/espresso.md", "de_kaffee.txt")  # every column's top 3 holds one of these

pytestmark = [
    pytest.mark.browser,
    pytest.mark.model,
    NEEDS_CHROMIUM,
]


@pytest.fixture(scope="module")
def real_index(tmp_path_factory: pytest.TempPathFactory, default_model_path: Path) -> Path:
    from indexer.build.job import build_index
    from indexer.config import ModelConfig
    from indexer.encoding.encoder import Encoder

    index_dir = tmp_path_factory.mktemp("browser") / "index"
    build_index(CORPUS, index_dir, encoder=Encoder(ModelConfig(model=str(default_model_path))))
    return index_dir


@pytest.fixture()
def app_url(real_index: Path, default_model_path: Path, tiny_reranker: Path, tmp_path: Path):
    """``e5search app`` serving the real index on a free loopback port; stopped (its whole group) at the end."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "e5search",
        "app",
        "--index",
        str(real_index),
        "--port",
        str(port),
        "--headless",
        "--reranker",
        str(tiny_reranker),
    ]
    with serving(
        cmd, port, tmp_path / "server.log", env={"E5SEARCH_HOME": str(default_model_path.parents[1])}
    ):
        yield f"http://127.0.0.1:{port}"


def _column_texts(page) -> list[str]:
    """The text of the three result columns (those holding hit cards), left to right."""
    columns = page.locator('[data-testid="stColumn"]').filter(has=page.locator(".e5-hit"))
    return [columns.nth(i).inner_text() for i in range(columns.count())]


def _screenshot(page, path: Path) -> None:
    """The whole page: Streamlit scrolls inside its main block, so grow the window to the content first."""
    page.wait_for_selector("[data-testid='stStatusWidget']", state="detached", timeout=120_000)
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]')?.scrollHeight ?? 1100")
    page.set_viewport_size({"width": 1600, "height": min(max(int(height), 1100), 6000)})
    page.wait_for_timeout(500)
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    assert path.stat().st_size > 10_000


def test_search_rerank_and_screenshot_in_a_real_browser(app_url: str, tmp_path: Path):
    pytest.importorskip("playwright.sync_api")
    with chromium(tmp_path / "chromium-profile") as context:
        page = context.new_page()
        page.goto(app_url + "/?rerank=0", wait_until="domcontentloaded")  # reranking is on by default
        box = page.get_by_label("Query")
        box.wait_for(timeout=120_000)
        box.fill(QUERY)
        box.press("Enter")
        page.wait_for_function("document.querySelectorAll('.e5-hit').length >= 9", timeout=120_000)
        page.wait_for_selector("span.e5-sent", timeout=120_000)  # the dense column's best sentences
        columns = _column_texts(page)
        assert len(columns) == 3
        for title, text in zip(("BM25", "Dense (E5)", "Hybrid"), columns, strict=True):
            assert text.startswith(title)
            top3 = text.split("Open")[:3]
            assert any(doc in card for card in top3 for doc in EXPECTED), (title, text[:500])
        page.wait_for_function("new URLSearchParams(location.search).get('q') !== null", timeout=30_000)
        assert "q=How+are+coffee" in page.url or "q=How%20are%20coffee" in page.url

        ARTIFACTS.mkdir(exist_ok=True)
        _screenshot(page, ARTIFACTS / "app-search.png")

        page.get_by_text("Rerank (cross-encoder)").click()
        page.wait_for_selector("[class^='e5-move-']", timeout=120_000)
        page.wait_for_function(  # back to the default (on): nothing about it in the URL
            "new URLSearchParams(location.search).get('rerank') === null", timeout=30_000
        )
        page.wait_for_function("document.querySelectorAll('.e5-hit').length >= 9", timeout=60_000)
        captions = " ".join(page.locator("[data-testid='stCaptionContainer']").all_inner_texts())
        assert "rerank" in captions and "Reranked in one pass" in captions
        _screenshot(page, ARTIFACTS / "app-search-rerank.png")
