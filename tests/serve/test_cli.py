"""``e5search serve`` as a user runs it, in its own process (the fake encoder standing in for the model): it
listens on 127.0.0.1, demands the token from ``E5SEARCH_TOKEN``, and Ctrl-C stops it cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.app.live import free_port
from tests.serve.conftest import ROOT, TOKEN, client


@pytest.mark.reliability  # a real process: ~10 s to start and stop on 2 shared cores
def test_the_command_serves_and_ctrl_c_stops_it(folder_index):
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "tests.serve.fake_cli",
        "serve",
        "--index",
        str(folder_index[1]),
        "--port",
        str(port),
    ]
    env = {**os.environ, "E5SEARCH_TOKEN": TOKEN}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-2000:]
            try:
                httpx.get(url + "/health", trust_env=False, timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        with client(url) as api, client(url, token=None) as stranger:
            assert (
                api.post("/search", json={"query": "Brot"}).json()["hits"][0]["doc_path"]
                == "de_rhein_brot.txt"
            )
            assert stranger.post("/search", json={"query": "Brot"}).status_code == 401
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert f"http://127.0.0.1:{port}" in out and "token required" in out
    assert "stopped" in err and "Traceback" not in err
