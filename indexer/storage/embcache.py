"""A persistent cache of passage embeddings keyed by (model fingerprint, text hash).

Written batch by batch while encoding, each batch committed, so an interrupted indexing run resumes where it
stopped instead of re-encoding. After a successful run it is pruned to the chunks the index holds.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np


def text_hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


class EmbeddingCache:
    def __init__(self, path: Path, model_fingerprint: str, dim: int):
        self.conn = sqlite3.connect(path)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS emb (model TEXT, hash TEXT, vec BLOB, PRIMARY KEY (model, hash))"
        )
        self.model = model_fingerprint
        self.dim = dim

    def get(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(hashes), 500):
            part = list(hashes[start : start + 500])
            marks = ",".join("?" * len(part))
            rows = self.conn.execute(
                f"SELECT hash, vec FROM emb WHERE model = ? AND hash IN ({marks})", [self.model, *part]
            )
            for h, blob in rows:
                found[h] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put(self, hashes: Sequence[str], vectors: np.ndarray) -> None:
        assert vectors.shape == (len(hashes), self.dim)
        self.conn.executemany(
            "INSERT OR REPLACE INTO emb VALUES (?, ?, ?)",
            [(self.model, h, np.asarray(v, dtype=np.float32).tobytes()) for h, v in zip(hashes, vectors)],
        )
        self.conn.commit()

    def prune(self, keep: Iterable[str]) -> int:
        """Delete every entry not in ``keep`` (and every entry of other models)."""
        self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS keep (hash TEXT PRIMARY KEY)")
        self.conn.execute("DELETE FROM keep")
        self.conn.executemany("INSERT OR IGNORE INTO keep VALUES (?)", ((h,) for h in keep))
        cur = self.conn.execute(
            "DELETE FROM emb WHERE model != ? OR hash NOT IN (SELECT hash FROM keep)", [self.model]
        )
        self.conn.commit()
        return cur.rowcount

    def close(self) -> None:
        self.conn.close()
