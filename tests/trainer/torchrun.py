"""Launch ``torchrun --nproc_per_node N`` from a test: loopback only, a free port, a timeout, and the whole
process group killed on failure so no rank outlives the test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A port the kernel just gave us on 127.0.0.1 (closed again for torchrun to bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loopback_env() -> dict[str, str]:
    """gloo and the rendezvous on ``lo`` only; one thread per rank (2 ranks share 2 cores)."""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(
        MASTER_ADDR="127.0.0.1",
        GLOO_SOCKET_IFNAME="lo",
        OMP_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
    )
    return env


def _kill_group(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


def torchrun(
    args: list[str], log: Path, nproc: int = 2, timeout: float = 240
) -> tuple[float, subprocess.CompletedProcess]:
    """Run ``torchrun --nproc_per_node nproc ... args`` in the repo root; returns (seconds, result).

    Output of every rank goes to ``log``. On timeout the process group is killed and TimeoutError raised.
    """
    launcher = Path(sys.executable).with_name("torchrun")
    cmd = [str(launcher)] if launcher.is_file() else [sys.executable, "-m", "torch.distributed.run"]
    cmd += [
        "--nnodes",
        "1",
        "--nproc_per_node",
        str(nproc),
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
        "--local_addr",
        "127.0.0.1",
        *args,
    ]
    t0 = time.monotonic()
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=loopback_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            rc = proc.wait(timeout=timeout)
        except BaseException:
            _kill_group(proc)
            raise
        finally:
            if proc.poll() is None:
                _kill_group(proc)
    return time.monotonic() - t0, subprocess.CompletedProcess(cmd, rc)


def tail(log: Path, n: int = 60) -> str:
    return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-n:])
