"""Queries per second through ``e5search serve`` at 1, 4 and 16 concurrent clients, against the CLI's batch mode.

Same index, same seeded sample of queries, same machine, one run. The baseline is ``e5search search --queries
Q.jsonl --json`` in a subprocess: its rate is given as measured (process start and model load included) and
over its searches alone (the sum of the records' ``timings_ms.total`` but the first's, whose warm-up, BM25 files
and the language identifier, the server does before it listens: what the loop spends in ``Index.search``
once warm, the CLI's best case; subtracting a one-query run's wall time instead was swamped by the start-up's
own variance on a shared machine). The server is
``e5search serve`` in a subprocess, started and warmed up once (not timed); each client is a thread of this
process with its own HTTP connection (httpx), all on 127.0.0.1, so on a small machine the clients share its
cores with the server. Every answer's ranked chunk ids are checked against the CLI's for the same query.

    python bench/serve_throughput.py --index DIR [--queries data/sample_queries.jsonl] [--n 120] [--seed 0]
        [--clients 1,4,16] [--mode hybrid] [-k 10] [--out bench/results/serve_run.md]

``--compare-lock`` measures instead why the server runs its models under one lock (:mod:`serve.served`): the
same sample searched by threads of one process through ``ServedIndex`` (no HTTP), with the model lock and with
it replaced by a no-op, alternating, two rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "e5search"]


def sample(path: Path, n: int, seed: int) -> list[dict]:
    """``n`` queries drawn with replacement by a seeded generator, each with its own id."""
    pool = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rng = random.Random(seed)
    return [{"_id": f"s{i}", "text": rng.choice(pool)["text"]} for i in range(n)]


def cli_batch(
    index: str, queries: list[dict], mode: str, k: int
) -> tuple[float, float, dict[str, list[int]]]:
    """Wall seconds for ``e5search search --queries`` over ``queries``, the seconds its searches but the first
    took (sum of ``timings_ms.total``), and each query's ranked chunk ids."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as f:
        f.write("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in queries))
    cmd = [*CLI, "search", "--queries", f.name, "--index", index, "--mode", mode, "-k", str(k), "--json"]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - t0
    os.unlink(f.name)
    records = [json.loads(line) for line in done.stdout.splitlines()]
    searching = sum(r["timings_ms"]["total"] for r in records[1:]) / 1e3
    return seconds, searching, {r["_id"]: [h["chunk_id"] for h in r["hits"]] for r in records}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(index: str, token: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "serve", "--index", index, "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "E5SEARCH_TOKEN": token},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"e5search serve exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if httpx.get(url + "/health", trust_env=False, timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.3)
    raise TimeoutError("e5search serve did not answer within 600 s")


def through_server(
    url: str, token: str, queries: list[dict], clients: int, mode: str, k: int
) -> tuple[float, dict[str, list[int]]]:
    """Seconds for ``clients`` threads to ask ``queries`` (each one query per request), and the answers."""
    order, lock, answers = iter(queries), threading.Lock(), {}

    def client() -> None:
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, trust_env=False
        ) as http:
            while True:
                with lock:
                    q = next(order, None)
                if q is None:
                    return
                got = http.post("/search", json={"query": q["text"], "mode": mode, "k": k}, timeout=120)
                got.raise_for_status()
                answers[q["_id"]] = [h["chunk_id"] for h in got.json()["hits"]]

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, answers


def compare_lock(index: str, queries: list[dict], client_counts: list[int], mode: str, k: int) -> list[str]:
    """Queries/s of threads searching one ``ServedIndex`` with and without its model lock (rows of a table)."""
    import contextlib

    from serve.served import Query, ServedIndex

    served = ServedIndex(index)
    served.warm_up()

    def rate(clients: int) -> float:
        order, lock = iter(queries), threading.Lock()

        def client() -> None:
            while True:
                with lock:
                    q = next(order, None)
                if q is None:
                    return
                served.search([Query(q["text"])], mode=mode, k=k)  # type: ignore[arg-type]

        threads = [threading.Thread(target=client) for _ in range(clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return len(queries) / (time.perf_counter() - t0)

    rows, model_lock = [], served.model_lock
    for round_ in (1, 2):
        for name, lock in (("model lock", model_lock), ("no lock", contextlib.nullcontext())):
            served.encoder._lock = served.encoder.tokenizer._lock = lock  # type: ignore[assignment]
            rates = " | ".join(f"{rate(c):.1f}" for c in client_counts)
            rows.append(f"| {round_} | {name} | {rates} |")
    served.close()
    head = " | ".join(f"{c} thread{'s' * (c > 1)}" for c in client_counts)
    return [f"| round | | {head} |", "|---|---|" + "---:|" * len(client_counts), *rows]


def machine() -> str:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    name = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines() if "Model name" in line), "?")
    flags = next(
        (line.split(":", 1)[1].split() for line in lscpu.splitlines() if line.startswith("Flags")), []
    )
    have = [f for f in ("avx2", "avx512f", "amx_tile", "avx512_bf16") if f in flags]
    return f"{name}, {os.cpu_count()} CPUs, flags {' '.join(have) or 'none of avx2/avx512f/amx'}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--index", required=True)
    p.add_argument("--queries", default=str(ROOT / "data" / "sample_queries.jsonl"))
    p.add_argument("--n", type=int, default=120)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--clients", default="1,4,16")
    p.add_argument("--mode", default="hybrid")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--out", help="also write the table here (Markdown)")
    p.add_argument("--compare-lock", action="store_true", help="queries/s with and without the model lock")
    args = p.parse_args()
    queries = sample(Path(args.queries), args.n, args.seed)
    if args.compare_lock:
        counts = [int(c) for c in args.clients.split(",")]
        text = f"{args.n} queries, seed {args.seed}, --mode {args.mode}; {machine()}\n\n"
        text += "\n".join(compare_lock(args.index, queries, counts, args.mode, args.k)) + "\n"
        print(text)
        if args.out:
            Path(args.out).write_text(text, encoding="utf-8")
        return
    seconds, searching, expected = cli_batch(args.index, queries, args.mode, args.k)
    cli_qps, cli_steady = len(queries) / seconds, (len(queries) - 1) / searching
    rows = [
        f"| CLI batch (`search --queries`), wall time ({seconds:.1f} s) | {cli_qps:.1f} | 1.00 | "
        f"{cli_qps / cli_steady:.2f} | |",
        f"| CLI batch, its searches alone, warm ({searching:.1f} s) | {cli_steady:.1f} | {cli_steady / cli_qps:.2f} | 1.00 | |",
    ]
    token = secrets.token_urlsafe(16)
    proc, url = start_server(args.index, token)
    try:
        for clients in (int(c) for c in args.clients.split(",")):
            seconds, answers = through_server(url, token, queries, clients, args.mode, args.k)
            same = sum(answers.get(q["_id"]) == expected[q["_id"]] for q in queries)
            qps = len(queries) / seconds
            rows.append(
                f"| serve, {clients} client{'s' * (clients > 1)} | {qps:.1f} | {qps / cli_qps:.2f} | "
                f"{qps / cli_steady:.2f} | {same}/{len(queries)} |"
            )
    finally:
        proc.terminate()
        proc.wait(30)
    load = os.getloadavg()
    text = (
        f"{args.n} queries sampled with seed {args.seed} from {args.queries}, --mode {args.mode}, -k {args.k}, "
        f"index {args.index}; {machine()}; load average {load[0]:.1f} at the end\n\n"
        "| run | queries/s | vs CLI wall time | vs CLI searches alone | rankings equal to the CLI's |\n"
        "|---|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n"
    )
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
