"""A real app server for tests, on a free 127.0.0.1 port, and a minimal Streamlit client that reads a page run.

All traffic goes to 127.0.0.1: a foreign ``Host`` header is sent over a socket connected to 127.0.0.1 (what a
browser sends after DNS rebinding), and proxies from the environment are ignored.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(
    "/usr/bin/chromium"
)  # Debian's (apt-get install -y chromium); Playwright's download is never needed
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NEEDS_CHROMIUM = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install -y chromium"
)
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_serving(port: int, server: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the app server exited with status {server.returncode}")
        try:
            with NO_PROXY.open(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"the app server did not answer on port {port} within {timeout_s} s")


@contextlib.contextmanager
def serving(cmd: list[str], port: int, log: Path, env: dict[str, str] | None = None) -> Iterator[None]:
    """Run ``cmd`` (a server on ``port``) until the block ends; its whole process group is stopped then."""
    with log.open("w") as out:
        server = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait_until_serving(port, server)
            yield
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


def page_run(port: int, host: str, origin: str | None = None, query: str = "") -> list[str]:
    """Open the app's WebSocket with ``Host: host:port``, run the page once, return each element it sent.

    Raises ``websockets.exceptions.InvalidStatus`` when the server refuses the connection.
    """
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.sync.client import connect

    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    elements = []
    with connect(
        f"ws://{host}:{port}/_stcore/stream",
        sock=sock,
        origin=origin,  # type: ignore[arg-type]
        subprotocols=["streamlit"],  # type: ignore[list-item]
        proxy=None,
        open_timeout=10,
    ) as ws:
        rerun = BackMsg()
        rerun.rerun_script.query_string = query
        ws.send(rerun.SerializeToString())
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            msg = ForwardMsg()
            msg.ParseFromString(ws.recv(timeout=120))
            kind = msg.WhichOneof("type")
            if kind == "delta":
                elements.append(str(msg.delta.new_element))
            elif kind == "script_finished":
                return elements
    raise TimeoutError(f"the page run on port {port} did not finish")


@contextlib.contextmanager
def chromium(profile: Path, args: Sequence[str] = (), width: int = 1600, height: int = 1100) -> Iterator:
    """A headless Chromium browser context (Playwright) with its own profile folder; closed at the end."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=[*CHROMIUM_ARGS, *args],
            viewport={"width": width, "height": height},
        )
        try:
            yield context
        finally:
            context.close()
