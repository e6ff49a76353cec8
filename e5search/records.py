"""The JSON records ``e5search`` prints and ``e5search serve`` answers with: one home, so both say the same.

``search --json`` prints :func:`search_record` per query and ``POST /search`` answers with the same objects;
``info --json`` prints :func:`info_record` and ``GET /info`` answers with it. Light to import (no faiss, no torch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from indexer.search.index import Index
    from indexer.types import SearchResult


def search_record(result: SearchResult, qid: str | None = None) -> dict:
    """One query's result as ``search --json`` prints it; a query from a queries file leads with its ``_id``."""
    obj = result.to_json()
    return obj if qid is None else {"_id": qid, **obj}


def info_record(index: Index) -> dict:
    """What ``e5search info --json`` prints: the index's stats and what ``auto`` means on this machine."""
    return {**index.stats(), "machine": machine_encoder()}


def machine_encoder() -> dict:
    """What ``auto`` means on this machine and why, for ``e5search info``."""
    from indexer.encoding.backends import auto_candidates
    from indexer.encoding.machine import machine_key, read_calibration

    record = read_calibration()
    how = f"calibrated {record['date']}" if record else "by CPU features; `e5search setup` calibrates"
    return {"cpu": machine_key(), "auto": auto_candidates("cpu"), "how": how, "calibration": record}
