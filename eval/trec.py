"""TREC run files (``qid Q0 docid rank score tag``): the one writer behind ``search --run`` and ``eval --run-dir``.

trec_eval (and pytrec_eval, ranx, pyserini) split a line on whitespace and reorder tied scores by docid, so the
writer percent-encodes whitespace and ``%`` in ids and writes scores at 6 decimals, strictly falling: a score that
does not fall below the previous line's is written 1e-6 below it (fused scores tie often). A file read back by
trec_eval is therefore scored exactly as ``e5search eval`` scores the run. Light to import (no numpy, no faiss).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

Run = dict[str, dict[str, float]]  # qid -> {docid: score}, best first (as indexer.types.Run)


def trec_lines(run: Run, tag: str) -> list[str]:
    """A best-first run → TREC lines, scores at 6 decimals and strictly falling.

    >>> trec_lines({"q 1": {"a.txt": 0.5, "b%.txt": 0.5}}, "t")
    ['q%201 Q0 a.txt 1 0.500000 t\\n', 'q%201 Q0 b%25.txt 2 0.499999 t\\n']
    """

    def quote(text: str) -> str:
        return re.sub(r"[\s%]", lambda m: f"%{ord(m.group()):02X}", text)

    lines = []
    for qid, docs in run.items():
        last = float("inf")
        for rank, (doc, score) in enumerate(docs.items(), start=1):
            value = round(float(score), 6)
            last = value if value < last else round(last - 1e-6, 6)
            lines.append(f"{quote(qid)} Q0 {quote(doc)} {rank} {last:.6f} {tag}\n")
    return lines


def write_run(path: str | Path, run: Run, tag: str) -> int:
    """Write ``run`` as a TREC file atomically (a reader never sees half a run); returns the number of lines."""
    path = Path(path)
    lines = trec_lines(run, tag)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(lines), encoding="utf-8")
    os.replace(tmp, path)
    return len(lines)
