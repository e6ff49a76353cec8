"""What only a browser shows: injected Markdown stays text, and a page reached by a rebound name gets nothing.

``e5search app`` serves an index (built with the real default model) of the fixture corpus, beside which a
queries file carries a Markdown link and image in its note; the URL's ``lang`` carries them too. Headless
Chromium maps ``evil.example`` to 127.0.0.1 (what DNS rebinding does) and blocks every other host, so nothing
leaves the machine; a request the page makes to the injected URL is recorded and fails the test.
"""

from __future__ import annotations

import json
import shutil
import sys
import urllib.parse
from pathlib import Path

import pytest

from app.render import WORD_JOINER
from tests.app.conftest import CORPUS
from tests.app.live import NEEDS_CHROMIUM, chromium, free_port, serving

pytestmark = [
    pytest.mark.browser,
    pytest.mark.model,
    NEEDS_CHROMIUM,
]

EVIL = "[x](http://evil.example/a) ![i](http://evil.example/i.png) www.evil.example a@evil.example"
EXAMPLE = "How are coffee beans roasted?"


def visible(text: str) -> str:
    """Text as a reader sees it: without the invisible joiners that keep a bare URL from becoming a link."""
    return text.replace(WORD_JOINER, "")


@pytest.fixture(scope="module")
def app_port(tmp_path_factory: pytest.TempPathFactory, default_model_path: Path):
    from indexer.build.job import build_index
    from indexer.config import ModelConfig
    from indexer.encoding.encoder import Encoder

    tmp = tmp_path_factory.mktemp("browser_safety")
    corpus = Path(shutil.copytree(CORPUS, tmp / "corpus"))
    example = {"text": EXAMPLE, "lang": "en", "note": f"note {EVIL}"}
    (tmp / "corpus_queries.jsonl").write_text(json.dumps(example) + "\n", encoding="utf-8")
    build_index(corpus, tmp / "index", encoder=Encoder(ModelConfig(model=str(default_model_path))))
    port = free_port()
    cmd = [sys.executable, "-m", "e5search", "app", "--index", str(tmp / "index"), "--port", str(port)]
    env = {"E5SEARCH_HOME": str(default_model_path.parents[1]), "E5SEARCH_RERANKER": "none"}
    with serving([*cmd, "--headless"], port, tmp / "server.log", env):
        yield port


@pytest.fixture()
def browser(app_port: int, tmp_path: Path):
    """A Chromium page that resolves evil.example to 127.0.0.1 and may load only the app, by either name; any
    other request (the injected image on evil.example:80, say) is recorded, then aborted."""
    pytest.importorskip("playwright.sync_api")
    blocked: list[str] = []

    def only_the_app(route) -> None:
        url = urllib.parse.urlsplit(route.request.url)
        if url.hostname == "127.0.0.1" or (url.hostname == "evil.example" and url.port == app_port):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    args = ["--no-proxy-server", "--host-resolver-rules=MAP evil.example 127.0.0.1"]
    with chromium(tmp_path / "chromium-profile", args, width=1400, height=1000) as context:
        context.route("**/*", only_the_app)
        yield context.new_page(), blocked


def test_injected_links_and_images_stay_text(app_port, browser):
    page, blocked = browser
    query = urllib.parse.urlencode({"q": EXAMPLE, "lang": EVIL})
    page.goto(f"http://127.0.0.1:{app_port}/?{query}", wait_until="domcontentloaded")
    alert = page.locator("[data-testid='stAlert']").filter(has_text="unknown language")
    alert.wait_for(timeout=120_000)
    assert EVIL in visible(alert.inner_text())
    caption = page.locator("[data-testid='stCaptionContainer']").filter(has_text="Example query")
    assert f"note {EVIL}" in visible(caption.inner_text())
    page.wait_for_timeout(1000)  # let an image the page wrongly rendered start loading
    assert page.locator("a[href*='evil.example']").count() == 0, page.locator("a").evaluate_all(
        "links => links.map(a => a.outerHTML)"
    )
    assert page.locator("img[src*='evil.example']").count() == 0
    assert not [url for url in blocked if "evil.example" in url], blocked


def test_a_rebound_name_gets_no_page(app_port, browser):
    page, _ = browser
    page.goto(f"http://127.0.0.1:{app_port}/?q=coffee", wait_until="domcontentloaded")
    page.get_by_label("Query").wait_for(timeout=120_000)  # the same browser gets the page by a loopback name
    page.goto(f"http://evil.example:{app_port}/?q=coffee", wait_until="domcontentloaded")
    page.wait_for_timeout(8000)
    assert page.get_by_label("Query").count() == 0
    assert page.locator(".e5-hit").count() == 0
    assert "e5search" not in page.locator("body").inner_text()
