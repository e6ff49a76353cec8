"""The app as ``e5search app`` serves it, on a real 127.0.0.1 port: which Host names and origins get a page.

A page's content only travels over Streamlit's WebSocket, so each check opens it the way the browser does and
runs the page once (tests/app/live.py); the static HTML shell holds nothing of the app's. No model is loaded: the
app is pointed at an empty index folder, whose page says so.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from e5search import cli
from tests.app.live import NO_PROXY, free_port, page_run, serving

pytest.importorskip("streamlit")
websockets = pytest.importorskip("websockets")

NO_INDEX = "no index at"  # what the Search page says about the empty index folder
REFUSED = "This app answers only by the names"  # the page's own refusal (app/access.py)


@pytest.fixture(scope="module")
def app_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """``e5search app`` on a free loopback port (default --host)."""
    tmp = tmp_path_factory.mktemp("app_server")
    port = free_port()
    cmd = [sys.executable, "-m", "e5search", "app", "--index", str(tmp / "index"), "--port", str(port)]
    with serving([*cmd, "--headless", "--allow-root", str(tmp)], port, tmp / "server.log"):
        yield port


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_loopback_names_get_the_page(app_port, host):
    elements = page_run(app_port, host)
    assert any(NO_INDEX in e for e in elements)


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1.evil.example", "localhost.evil.example"])
def test_a_foreign_host_gets_no_page(app_port, host):
    """What a page on evil.example sees after pointing its name at 127.0.0.1 (DNS rebinding)."""
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        page_run(app_port, host)
    assert refused.value.response.status_code == 403


def test_a_foreign_origin_gets_no_page(app_port):
    """A page on another site that opens ws://127.0.0.1:PORT itself (CORS stays on)."""
    with pytest.raises(websockets.exceptions.InvalidStatus):
        page_run(app_port, "127.0.0.1", origin="http://evil.example")
    assert any(NO_INDEX in e for e in page_run(app_port, "127.0.0.1", origin=f"http://127.0.0.1:{app_port}"))


def test_xsrf_protection_is_on(app_port):
    url = f"http://127.0.0.1:{app_port}"
    with NO_PROXY.open(f"{url}/_stcore/health") as response:
        cookies = response.headers.get_all("Set-Cookie") or []
    assert any(c.startswith("_streamlit_xsrf=") for c in cookies), cookies
    upload = urllib.request.Request(f"{url}/_stcore/upload_file/session/file", data=b"x", method="PUT")
    with pytest.raises(urllib.error.HTTPError) as refused:
        NO_PROXY.open(upload)
    assert refused.value.code == 403  # a cross-site form cannot upload without the cookie's token


def test_streamlit_run_without_the_cli_still_refuses_a_foreign_host(tmp_path):
    """Started by ``streamlit run`` with no allowed hosts, Streamlit lets any Host in; the page itself refuses."""
    port = free_port()
    script = Path(cli.__file__).resolve().parents[1] / "app" / "streamlit_app.py"
    cmd = [sys.executable, "-m", "streamlit", "run", str(script), "--server.address", "127.0.0.1"]
    cmd += ["--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    env = {"E5SEARCH_INDEX": str(tmp_path / "index")}
    with serving(cmd, port, tmp_path / "server.log", env):
        foreign = page_run(port, "evil.example")
        assert any(REFUSED in e for e in foreign)
        assert not any(NO_INDEX in e or "Page" in e for e in foreign), foreign
        assert any(NO_INDEX in e for e in page_run(port, "127.0.0.1"))


# ------------------------------------------------------------------------------------------------ the CLI
def parse(*argv: str):
    return cli.build_parser().parse_args(list(argv))


def flags(cmd: list[str], name: str) -> list[str]:
    return [value for flag, value in zip(cmd, cmd[1:], strict=False) if flag == name]


def test_the_command_pins_the_safety_flags():
    cmd = cli._streamlit_command(Path("app.py"), parse("app", "--host", "Search.LAN"))
    assert flags(cmd, "--server.allowedHosts") == ["localhost", "127.0.0.1", "::1", "search.lan"]
    assert flags(cmd, "--server.enableXsrfProtection") == ["true"]
    assert flags(cmd, "--server.enableCORS") == ["true"]
    assert flags(cmd, "--server.address") == ["Search.LAN"]


def test_allow_root_must_be_a_folder(tmp_path, capsys):
    assert cli.main(["app", "--index", str(tmp_path / "i"), "--allow-root", str(tmp_path / "nope")]) == 2
    assert "--allow-root" in capsys.readouterr().err


def test_app_hands_the_roots_and_host_to_the_page(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr("subprocess.call", lambda cmd, env: seen.update(env) or 0)
    (tmp_path / "a").mkdir()
    argv = ["app", "--index", str(tmp_path / "i"), "--headless", "--host", "search.lan"]
    assert cli.main([*argv, "--allow-root", str(tmp_path / "a"), "--allow-root", str(tmp_path)]) == 0
    assert seen["E5SEARCH_ALLOW_ROOTS"].split(os.pathsep) == [
        str((tmp_path / "a").resolve()),
        str(tmp_path.resolve()),
    ]
    assert seen["E5SEARCH_ALLOWED_HOSTS"] == "search.lan"
    assert cli.main(argv) == 0
    assert seen["E5SEARCH_ALLOW_ROOTS"] == ""  # no --allow-root: the pages read no folders


def test_demo_lets_its_page_reindex_the_sample(tmp_path, monkeypatch):
    """``e5search demo`` indexes the sample itself, and passes it on as the one allowed root."""
    seen = {}
    monkeypatch.setattr("indexer.models.default_model.build_default_model", lambda **kw: "model")
    monkeypatch.setattr(cli, "cmd_app", lambda args: seen.update(vars(args)) or 0)
    summary = type(
        "S", (), dict(added=1, updated=0, removed=0, unchanged=0, skipped=[], chunks=1, seconds=0.0)
    )
    monkeypatch.setattr("indexer.build.job.build_index", lambda *a, **kw: summary)
    assert cli.main(["demo", "--data", "data/sample", "--index", str(tmp_path / "i"), "--headless"]) == 0
    assert seen["allow_root"] == ["data/sample"] and seen["reranker"] is None
