"""Measure which encoder backend is fastest on this machine, at the quality bar, and record the order for ``auto``.

Run once by ``e5search setup`` (a few seconds per backend): every CPU backend that is installed and can run
here (``torch-bf16`` only with bf16 instructions; ``ct2-int8`` stays opt-in) encodes a fixed probe batch of
multilingual passages of document length, after one warm-up pass; its vectors are compared with fp32 torch's;
backends below their numerics class's bar are dropped; the rest are ordered by time. The record, with the CPU it
was measured on, goes to ``<cache>/calibration.json`` (:mod:`.machine`), which ``auto`` then follows.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

import numpy as np

from indexer.config import DEFAULT_MODEL, EncoderBackend, ModelConfig
from indexer.encoding.artefacts import MIN_PROBE_COSINE, PROBE_TEXTS
from indexer.encoding.backends import BACKENDS, NUMERICS
from indexer.encoding.encoder import Encoder
from indexer.encoding.machine import fast_bf16, machine_key, write_calibration

logger = logging.getLogger(__name__)

CANDIDATES: tuple[EncoderBackend, ...] = ("torch-bf16", "onnx-int8", "torch")
MIN_COSINE = {"fp32": 0.999, "int8": MIN_PROBE_COSINE}  # per text, against fp32 torch
PROBE_REPEATS = (1, 4, 12)  # passages of ~20, ~80 and ~240 tokens: short notes to full chunks


def probe_passages() -> list[str]:
    """48 multilingual passages of three lengths, from the artefact probe texts (no data set needed)."""
    texts = [t.removeprefix("passage: ").removeprefix("query: ") for t in PROBE_TEXTS]
    return [" ".join([t] * r) for r in PROBE_REPEATS for t in texts for _ in range(2)]


def runnable_here() -> list[EncoderBackend]:
    """The candidates installed and able to run on this CPU."""
    return [b for b in CANDIDATES if BACKENDS[b].missing() is None and (b != "torch-bf16" or fast_bf16())]


def calibrate(model: str = DEFAULT_MODEL, rounds: int = 2) -> dict:
    """Time each backend on :func:`probe_passages` (best of ``rounds``), check it, record and return the result.

    >>> calibrate()["order"]  # doctest: +SKIP
    ['torch-bf16', 'onnx-int8', 'torch']
    """
    texts = probe_passages()
    reference = Encoder(ModelConfig(model=model, backend="torch", device="cpu")).encode_passages(texts)
    seconds, cosine = {}, {}
    for backend in runnable_here():
        try:
            enc = Encoder(ModelConfig(model=model, backend=backend, device="cpu"))
        except Exception as exc:  # a backend that cannot serve the model is simply not a candidate
            logger.warning("calibration: %s unavailable (%s)", backend, exc)
            continue
        enc.encode_passages(texts[:4])  # warm-up: thread pools, first-call allocations
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            vectors = enc.encode_passages(texts)
            times.append(time.perf_counter() - t0)
        seconds[backend] = min(times)
        cosine[backend] = float(np.min(np.sum(vectors * reference, axis=1)))
    passing = [b for b in seconds if cosine[b] >= MIN_COSINE[NUMERICS[b]]]
    record = {
        "order": sorted(passing, key=lambda b: seconds[b]),
        "seconds": {b: round(t, 4) for b, t in seconds.items()},
        "min_cosine": {b: round(c, 6) for b, c in cosine.items()},
        "probe": {"passages": len(texts), "rounds": rounds, "model": model},
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    path = write_calibration(record)
    logger.info("calibration for %s written to %s: %s", machine_key(), path, record["order"])
    return {**record, "machine": machine_key()}
