"""Training pairs as JSONL: reading with errors that name the line, writing atomically, and turning pairs into
the column layout sentence-transformers' losses read (anchor, positive, negative_1 … negative_n).

One record per line::

    {"query": "...", "passage": "...", "negatives": ["...", ...], "teacher_scores": [s_pos, s_neg1, ...],
     "task": "...", "lang": "...", "source": "..."}

``query`` and ``passage`` are required; the rest are optional but, when one record has ``negatives`` or
``teacher_scores``, every record must (a file mixing schemas is refused: it is nearly always two files
concatenated by mistake). Texts never carry prompts (``query: ``); the trainer adds the model's prompts.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from indexer.errors import E5SearchError

logger = logging.getLogger(__name__)

REQUIRED = ("query", "passage")
OPTIONAL = ("negatives", "teacher_scores", "task", "lang", "source", "id")
SCHEMA_KEYS = ("negatives", "teacher_scores")  # must be present in all records or in none


class TrainingDataError(E5SearchError, ValueError):
    """A training file is malformed; the message names the file, the line and the fix."""


@dataclass(frozen=True)
class Pair:
    query: str
    passage: str
    negatives: tuple[str, ...] = ()
    teacher_scores: tuple[float, ...] = ()
    task: str | None = None
    lang: str | None = None
    source: str | None = None
    id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"query": self.query, "passage": self.passage}
        if self.negatives:
            out["negatives"] = list(self.negatives)
        if self.teacher_scores:
            out["teacher_scores"] = [round(float(s), 6) for s in self.teacher_scores]
        for key in ("task", "lang", "source", "id"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


def _open(path: Path, mode: str):
    return (
        gzip.open(path, mode + "t", encoding="utf-8")
        if path.suffix == ".gz"
        else open(path, mode, encoding="utf-8")
    )


def _text(record: dict, key: str, where: str) -> str:
    value = record.get(key)
    if value is None:
        raise TrainingDataError(f"{where}: missing field {key!r}; every record needs 'query' and 'passage'")
    if not isinstance(value, str):
        raise TrainingDataError(f"{where}: field {key!r} is {type(value).__name__}, expected a string")
    if not value.strip():
        raise TrainingDataError(
            f"{where}: field {key!r} is empty; remove the record or run `train pairs` to clean"
        )
    return value


def parse_record(record: Any, where: str) -> Pair:
    """One JSON object → :class:`Pair`, or :class:`TrainingDataError` naming ``where`` (``file:line``)."""
    if not isinstance(record, dict):
        raise TrainingDataError(f"{where}: expected a JSON object, got {type(record).__name__}")
    unknown = sorted(set(record) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise TrainingDataError(
            f"{where}: unknown fields {unknown}; known: {list(REQUIRED + OPTIONAL)}. "
            "Rename them, or convert the file with `e5search train pairs --jsonl`"
        )
    query, passage = _text(record, "query", where), _text(record, "passage", where)
    negatives = record.get("negatives", [])
    if not isinstance(negatives, list) or not all(isinstance(n, str) and n.strip() for n in negatives):
        raise TrainingDataError(f"{where}: 'negatives' must be a list of non-empty strings")
    scores = record.get("teacher_scores", [])
    if not isinstance(scores, list) or not all(isinstance(s, (int, float)) for s in scores):
        raise TrainingDataError(f"{where}: 'teacher_scores' must be a list of numbers")
    if scores and len(scores) != 1 + len(negatives):
        raise TrainingDataError(
            f"{where}: {len(scores)} teacher_scores for 1 passage + {len(negatives)} negatives; "
            "give one score per candidate, positive first"
        )
    meta: dict[str, Any] = {k: record.get(k) for k in ("task", "lang", "source", "id")}
    for key, value in meta.items():
        if value is not None and not isinstance(value, str):
            raise TrainingDataError(f"{where}: field {key!r} must be a string")
    return Pair(query, passage, tuple(negatives), tuple(float(s) for s in scores), **meta)


def iter_pairs(path: str | Path) -> Iterator[Pair]:
    """Read pairs, checking every line and that all lines share one schema."""
    path = Path(path)
    if not path.is_file():
        raise TrainingDataError(f"{path}: no such file; build pairs first with `e5search train pairs`")
    first: tuple[int, dict[str, Any]] | None = None
    with _open(path, "r") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}, line {lineno}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TrainingDataError(f"{where}: not valid JSON ({exc.msg})") from None
            pair = parse_record(record, where)
            shape = {"negatives": len(pair.negatives), "teacher_scores": bool(pair.teacher_scores)}
            if first is None:
                first = (lineno, shape)
            elif shape != first[1]:
                raise TrainingDataError(
                    f"{where}: mixed schemas: this record has {_describe(shape)} but line {first[0]} has "
                    f"{_describe(first[1])}. Split the file, or re-run `train mine` so every record has the same "
                    "number of negatives"
                )
            yield pair


def _describe(shape: dict[str, Any]) -> str:
    scores = "with" if shape["teacher_scores"] else "without"
    return f"{shape['negatives']} negatives, {scores} teacher_scores"


def read_pairs(path: str | Path, limit: int | None = None) -> list[Pair]:
    out: list[Pair] = []
    for pair in iter_pairs(path):
        if limit is not None and len(out) >= limit:
            break
        out.append(pair)
    if not out:
        raise TrainingDataError(f"{path}: no records; build pairs with `e5search train pairs`")
    return out


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> int:
    """Write records atomically (temp file + rename): a killed run never leaves a half file that looks whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp, n = Path(name), 0
    try:
        with _open(tmp, "w") as f:
            for record in records:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
                n += 1
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return n


def write_pairs(path: str | Path, pairs: Iterable[Pair]) -> int:
    return write_jsonl(path, (p.to_json() for p in pairs))


def check_no_prompts(pairs: Sequence[Pair], prompts: Sequence[str], path: str | Path = "pairs") -> None:
    """Refuse texts that already start with a prompt: the trainer adds prompts, so they would be applied twice."""
    prompts = [p for p in prompts if p and p.strip()]
    for i, pair in enumerate(pairs, start=1):
        for text in (pair.query, pair.passage, *pair.negatives):
            hit = next((p for p in prompts if text.startswith(p)), None)
            if hit is not None:
                raise TrainingDataError(
                    f"{path}: record {i} starts with the prompt {hit!r}; the trainer applies the model's prompts "
                    "itself. Remove the prefix from the data"
                )


def columns(pairs: Sequence[Pair], num_negatives: int, with_labels: bool = False) -> dict[str, list]:
    """Pairs → ``{"anchor": [...], "positive": [...], "negative_1": [...], ..., ["label": [...]]}``."""
    if num_negatives and any(len(p.negatives) < num_negatives for p in pairs):
        have = min(len(p.negatives) for p in pairs)
        raise TrainingDataError(
            f"num_negatives={num_negatives} but some records have only {have} negatives: "
            f"lower num_negatives, or mine more with `train mine --num-negatives`"
        )
    cols: dict[str, list] = {"anchor": [p.query for p in pairs], "positive": [p.passage for p in pairs]}
    for j in range(num_negatives):
        cols[f"negative_{j + 1}"] = [p.negatives[j] for p in pairs]
    if with_labels:
        if any(len(p.teacher_scores) < 1 + num_negatives for p in pairs):
            raise TrainingDataError(
                "distillation needs 'teacher_scores' for the passage and each negative: "
                "score the candidates with `e5search train mine --teacher CROSS_ENCODER`"
            )
        cols["label"] = [list(p.teacher_scores[: 1 + num_negatives]) for p in pairs]
    return cols
