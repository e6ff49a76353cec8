"""``e5search index`` end to end vs doing it by hand with sentence-transformers, side by side (issue 15's gate).

Both sides start a fresh process, load the model and embed the same seeded random sample of SciFact abstracts
(written as one .txt file each): by hand = ``SentenceTransformer.encode`` fp32 of ``passage: `` + title + text,
batch 32; e5search = ``e5search index FOLDER --index FRESH`` with the defaults (chunking, ``auto`` backend, a
fresh index and embedding cache every round). Rounds alternate the two sides; the ratio is reported per round
(by-hand seconds / e5search seconds: above 1 means e5search is faster) with the CPU it ran on.

``--profile`` instead runs one ``e5search index`` of the sample under cProfile (in a fresh process, as above) and
prints where its time went: start-up and imports, the encoder's load, reading + chunking + language detection,
encoding, writing (SQLite, FAISS, BM25), and whether the fp32 ONNX query-path model was built or opened.

Usage:  python bench/index_vs_st.py [--docs 400] [--rounds 3] [--seed 0] [--backend auto] [--chunk-size N]
        python bench/index_vs_st.py --profile
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SCIFACT = ROOT.parent / "shared" / "data" / "scifact-beir" / "corpus.jsonl.gz"

BY_HAND = """
import sys, time
t0 = time.perf_counter()
from sentence_transformers import SentenceTransformer
from pathlib import Path
texts = [p.read_text(encoding="utf-8") for p in sorted(Path(sys.argv[2]).glob("*.txt"))]
model = SentenceTransformer(sys.argv[1], device="cpu")
model.encode(["passage: " + " ".join(t.split("\\n\\n", 1)) for t in texts], batch_size=32, normalize_embeddings=True)
print(time.perf_counter() - t0)
"""


def write_sample(folder: Path, n_docs: int, seed: int) -> None:
    with gzip.open(SCIFACT, "rt", encoding="utf-8") as f:
        docs = [json.loads(line) for line in f]
    for doc in random.Random(seed).sample(docs, n_docs):
        (folder / f"{doc['_id']}.txt").write_text(f"{doc['title']}\n\n{doc['text']}", encoding="utf-8")


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True, text=True)
    return time.perf_counter() - t0


# (phase, the function whose cumulative time it is); cProfile adds ~10 % to Python-heavy phases
PHASES = (
    ("e5search index, whole process", "e5search/__main__.py:<module>"),
    ("  encoder load (imports, model, backend)", "encoder.py:encoder_for_index"),
    ("    import sentence_transformers (0 for a lean folder)", "sentence_transformers/__init__.py:<module>"),
    (
        "    import transformers' modelling code (0 for a lean folder)",
        "transformers/modeling_utils.py:<module>",
    ),
    ("    load the tokenizer", "tokenization_utils_base.py:from_pretrained"),
    ("    fp32 ONNX lone-text model (must be 0: not at index time)", "backends.py:_fp32_solo"),
    ("  read + chunk + language (all files)", "scan.py:_scan"),
    ("    chunk_document", "chunking.py:chunk_document"),
    ("    detect_languages", "langdetect.py:detect_languages"),
    ("  encode_passages (tokenise + model)", "encoder.py:encode_passages"),
    ("    token_ids (tokenising for the model)", "tokens.py:token_ids"),
    ("  write: SQLite rows, FAISS, BM25, manifest", "write.py:_write"),
    ("    BM25 build", "bm25.py:build"),
)


def profile(docs: Path, index: Path, extra: list[str]) -> None:
    """One ``e5search index`` under cProfile; prints the cumulative seconds of each phase in :data:`PHASES`."""
    import pstats

    out = index.parent / "index.prof"
    cmd = [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "e5search", "index", str(docs)]
    t0 = time.perf_counter()
    subprocess.run([*cmd, "--index", str(index), "--quiet", "--json", *extra], check=True, cwd=ROOT)
    print(f"wall {time.perf_counter() - t0:.1f} s (process start to exit, under cProfile)")
    stats = pstats.Stats(str(out)).stats  # type: ignore[attr-defined]
    for label, key in PHASES:
        where, _, name = key.rpartition(":")
        total = sum(row[3] for (file, _, func), row in stats.items() if file.endswith(where) and func == name)
        print(f"{label:<66} {total:6.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--chunk-size", type=int)
    ap.add_argument("--chunk-overlap", type=int)
    ap.add_argument("--profile", action="store_true", help="one profiled e5search index run, by phase")
    args = ap.parse_args()

    from indexer.encoding.backends import auto_candidates
    from indexer.encoding.machine import machine_key
    from indexer.models.default_model import build_default_model

    model_dir = str(build_default_model())
    e5 = [sys.executable, "-c", "import sys; from e5search.cli import main; sys.exit(main())", "index"]
    extra = ["--backend", args.backend]
    extra += ["--chunk-size", str(args.chunk_size)] if args.chunk_size else []
    extra += ["--chunk-overlap", str(args.chunk_overlap)] if args.chunk_overlap is not None else []
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        docs = Path(tmp) / "docs"
        docs.mkdir()
        write_sample(docs, args.docs, args.seed)
        if args.profile:
            return profile(docs, Path(tmp) / "profiled", extra)
        for r in range(args.rounds):
            hand = timed([sys.executable, "-c", BY_HAND, model_dir, str(docs)])
            index = Path(tmp) / f"idx{r}"
            ours = timed([*e5, str(docs), "--index", str(index), "--quiet", "--json", *extra])
            rows.append((hand, ours))
            print(
                f"round {r + 1}: by hand {hand:.1f} s, e5search {ours:.1f} s, ratio {hand / ours:.2f}",
                flush=True,
            )
        summary = json.loads(
            subprocess.run(
                [*e5[:-1], "info", "--index", str(Path(tmp) / "idx0"), "--json"],
                check=True,
                cwd=ROOT,
                capture_output=True,
                text=True,
            ).stdout
        )
    ratios = [h / o for h, o in rows]
    print(
        f"\n{dt.date.today()} | {machine_key()} | auto here: {' > '.join(auto_candidates('cpu'))}\n"
        f"{args.docs} SciFact abstracts (seed {args.seed}) -> {summary['chunks']} chunks, "
        f"backend {summary['model'].get('backend')}, chunking {summary['config']['chunking']}\n"
        f"by hand (sentence-transformers fp32) median {statistics.median(h for h, _ in rows):.1f} s, "
        f"e5search index median {statistics.median(o for _, o in rows):.1f} s; ratio per round "
        f"{', '.join(f'{x:.2f}' for x in ratios)} (median {statistics.median(ratios):.2f})"
    )


if __name__ == "__main__":
    main()
