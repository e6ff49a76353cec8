"""A real Ray cluster for the tests: one head on 127.0.0.1, started once per session, stopped afterwards.

``ray start --head --block`` runs in a session of its own and the fixture stops exactly that process group
(SIGTERM: Ray drains and stops its processes; SIGKILL to the group if it hangs), never with ``ray stop``, which
stops every Ray process on the machine. Ray's single-machine switch keeps every address on 127.0.0.1
(``--node-ip-address`` alone is swapped for the machine's network address by Ray); token authentication is off
for this loopback-only cluster, whatever ``~/.ray`` holds.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer.encoding.ray_encode import SINGLE_MACHINE_ENV

RAY = Path(sys.executable).with_name("ray")
TEST_ENV = {
    SINGLE_MACHINE_ENV: "0",  # addresses stay 127.0.0.1 (read when ray is first imported)
    # the head listens on 127.0.0.1 only; without this a token in ~/.ray (which a local ray.init() writes)
    # would turn token authentication on for the head but not for drivers given its address
    "RAY_AUTH_MODE": "disabled",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_started(proc: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ray start exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        if "Ray runtime started" in log.read_text():
            return
        time.sleep(0.5)
    raise RuntimeError(f"ray start did not finish in {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=45)
    with contextlib.suppress(ProcessLookupError):  # what is left of the group (the head's children share it)
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


@pytest.fixture(scope="session")
def ray_head() -> Iterator[str]:
    """``127.0.0.1:<port>`` of a running head with 2 CPUs, no dashboard, no usage report."""
    saved = {k: os.environ.get(k) for k in TEST_ENV}
    os.environ.update(TEST_ENV)  # for this process's drivers and the commands it starts too
    if importlib.util.find_spec("ray") is None:
        _restore(saved)
        pytest.skip("ray is not installed: pip install 'e5search[ray]'")
    temp = Path(tempfile.mkdtemp(prefix="e5ray", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    port, log = _free_port(), temp / "head.log"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    command = [str(RAY), "start", "--head", "--node-ip-address=127.0.0.1", "--include-dashboard=false"]
    command += ["--num-cpus", "2", "--port", str(port), "--temp-dir", str(temp / "ray"), "--block"]
    command += ["--disable-usage-stats"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        _wait_started(proc, log)
        yield f"127.0.0.1:{port}"
    finally:
        _stop(proc)
        shutil.rmtree(temp, ignore_errors=True)
        _restore(saved)


def _restore(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def ray_address(ray_head: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The head's address, also as ``$RAY_ADDRESS`` for this test only; the driver disconnects afterwards."""
    monkeypatch.setenv("RAY_ADDRESS", ray_head)
    yield ray_head
    import ray

    ray.shutdown()
