"""Overlap reading with encoding: a read-ahead thread, and an encoding stage that takes texts as they come.

While a GPU encodes one group of chunks (torch releases the GIL while it waits for the device), a thread reads,
chunks and language-tags the next files, so the end-to-end speed of an indexing run approaches the slower of the
two instead of adding them (bench/index.py measures it). On CPU the encoder already keeps every core busy and
:mod:`indexer.build.job` reads first, then encodes, through the same encoding stage. Everything the
thread produces is handed over in order; nothing is written to the index until the whole run has been read and
encoded, so this changes no crash-safety property of :mod:`indexer.build.job`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

import numpy as np
from tqdm.auto import tqdm

from indexer.encoding.encoder import TextEncoder
from indexer.storage.embcache import EmbeddingCache, text_hash

T = TypeVar("T")


_END = object()


class _Failed:
    def __init__(self, exc: BaseException):
        self.exc = exc


def read_ahead(items: Iterator[T], depth: int) -> Iterator[T]:
    """Yield ``items`` in order while a thread computes up to ``depth`` of them ahead of the consumer.

    An exception in the thread is raised in the consumer at the position where it happened; when the consumer
    stops early (an error, Ctrl-C, ``break``), the thread stops at its next item.
    """
    handoff: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            put(_Failed(exc))

    thread = threading.Thread(target=produce, name="e5search-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = handoff.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join(timeout=5.0)


class CachedEncoding:
    """Passage vectors for texts added over time: known ones from the embedding cache, the others encoded a
    group at a time (longest first within the group) as soon as a group is full, each group committed to the
    cache, so an interrupted run resumes where it stopped. Groups start at ``first_group`` texts and double up
    to ``group``: the encoder starts early, then gets calls large enough that their overhead does not count.
    With ``pool`` larger than ``group``, encoding waits until ``pool`` texts wait and then takes the longest
    ``group`` of them: batches are length-sorted over more texts, so less of them is padding (on CPU, where
    nothing reads beside the encoder, starting early buys nothing).

    >>> stage = CachedEncoding(encoder, cache, group=256)   # doctest: +SKIP
    >>> stage.add(["passage one", "passage two"])          # encodes whenever 256 new texts are waiting
    >>> vectors = stage.finish()                            # {text_hash: (dim,) vector}
    """

    def __init__(
        self,
        encoder: TextEncoder,
        cache: EmbeddingCache,
        group: int,
        show_progress: bool = False,
        first_group: int | None = None,
        pool: int = 0,
    ):
        self.encoder, self.cache, self.max_group, self.pool = encoder, cache, group, pool
        self.group = min(first_group or group, group)
        self.vectors: dict[str, np.ndarray] = {}
        self.waiting: dict[str, str] = {}  # hash -> text, not yet encoded
        self.encoded = 0  # texts that went through the model
        self.bar = tqdm(desc="encoding", unit="chunk", total=0, disable=not show_progress)

    def add(self, texts: list[str]) -> None:
        new = {
            h: t
            for h, t in zip(map(text_hash, texts), texts)
            if h not in self.vectors and h not in self.waiting
        }
        self.vectors.update(self.cache.get(list(new)))
        self.waiting.update((h, t) for h, t in new.items() if h not in self.vectors)
        self.bar.total += sum(h not in self.vectors for h in new)
        while len(self.waiting) >= max(self.group, self.pool):
            self._encode_group()

    def finish(self, progress: Callable[[str, int, int], None] | None = None) -> dict[str, np.ndarray]:
        """Encode what is still waiting; returns every added text's vector by text hash."""
        total = self.encoded + len(self.waiting)
        while self.waiting:
            if progress:
                progress("encoding", self.encoded, total)
            self._encode_group()
        if progress:
            progress("encoding", total, total)
        self.bar.close()
        return self.vectors

    def _encode_group(self) -> None:
        longest_first = sorted(self.waiting.items(), key=lambda kv: -len(kv[1]))[: self.group]
        hashes = [h for h, _ in longest_first]
        vecs = self.encoder.encode_passages([t for _, t in longest_first])  # (len(hashes), dim)
        self.cache.put(hashes, vecs)
        for h, v in zip(hashes, vecs):
            self.vectors[h] = np.asarray(v, dtype=np.float32)
            del self.waiting[h]
        self.encoded += len(hashes)
        self.bar.update(len(hashes))
        self.group = min(2 * self.group, self.max_group)
