"""The runners behind the backends: what turns token ids into pooled, normalised vectors.

:class:`TorchRunner` (fp32 or bf16 autocast, length-sorted batches under a token budget), :class:`OnnxRunner`
and :class:`Ct2Runner` (one text per run, texts spread over one single-threaded run per core; a lone text is split
over :data:`SOLO_THREADS`), :class:`PackedRunner` (the GPU path of :mod:`.gpu_encode`). Which one runs is
decided in :mod:`.backends`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from indexer.models.lean import hidden_states

GPU_BATCH_TOKENS = 32_768  # padded tokens per forward pass on GPU


CPU_BATCH_TOKENS = 8_192  # on CPU, about what sentence-transformers' 32 texts of SciFact length make


SOLO_THREADS = 4  # cores one lone text (a query) is split over; more only adds synchronisation


# ------------------------------------------------------------------------------------------- tokenisation
def pool(hidden: np.ndarray, mode: str) -> np.ndarray:
    """(seq, hidden) token states of one unpadded text -> (hidden,) unit vector."""
    vec = hidden.mean(axis=0) if mode == "mean" else hidden[0]
    return vec / max(float(np.linalg.norm(vec)), 1e-12)


def available_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


# ------------------------------------------------------------------------------------------------ runners
class Runner(Protocol):
    def embed(self, seqs: list[np.ndarray], show_progress: bool = False) -> np.ndarray: ...  # (n, dim)


@functools.lru_cache(maxsize=4)
def _ort_session(path: str, threads: int = 1):
    """One session per artefact, thread count and process, without spin-waiting (on a shared machine spinning
    threads take cores from everything else). Batches run one text per single-threaded call, several calls at
    once: that scales better than splitting one text's small matrix products over cores. A lone text (a query)
    has nothing to run beside it, so it gets a session that splits it over ``threads`` cores."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


class _PerTextRunner:
    """One unpadded text per run, texts spread over one single-threaded run per core; a lone text (a query) has
    nothing to run beside it, so it goes to a runtime that splits it over up to :data:`SOLO_THREADS` cores.
    Activations are quantised per run, so a text's vector does not depend on the texts encoded with it (the
    embedding cache relies on that). Subclasses say how one text runs."""

    revision = ""  # the artefact's format: part of the embedding cache's key

    def __init__(self, pooling: str, workers: int | None = None):
        self.pooling = pooling
        self.workers = workers or available_cpus()
        self._pool: ThreadPoolExecutor | None = None

    def _hidden(self, ids: np.ndarray, solo: bool) -> np.ndarray:  # (seq,) -> (seq, hidden)
        raise NotImplementedError

    def _one(self, ids: np.ndarray, solo: bool = False) -> np.ndarray:
        return pool(self._hidden(ids, solo), self.pooling)

    def embed(self, seqs: list[np.ndarray], show_progress: bool = False) -> np.ndarray:
        from tqdm.auto import tqdm

        assert seqs, "callers handle the empty batch"
        if (
            len(seqs) == 1 and self.workers > 1
        ):  # a query: split it over the cores (same numbers, less latency)
            return self._one(seqs[0], solo=True)[None, :]
        longest_first = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))  # balances the workers
        if len(seqs) > 1 and self.workers > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="e5search-encode")
            vecs = self._pool.map(self._one, (seqs[i] for i in longest_first))
        else:
            vecs = map(self._one, (seqs[i] for i in longest_first))
        done = list(tqdm(vecs, total=len(seqs), disable=not show_progress, unit="text"))
        out = np.empty((len(seqs), done[0].shape[0]), np.float32)
        out[longest_first] = np.stack(done)  # (n, hidden)
        return out


class OnnxRunner(_PerTextRunner):
    """ONNX Runtime on CPU (:mod:`indexer.encoding.onnx_build`)."""

    def __init__(self, model_path: Path, pooling: str, workers: int | None = None, lone_only: bool = False):
        super().__init__(pooling, workers)
        self.path = str(model_path)
        # one serving lone texts only (TorchRunner.solo) opens no batch session: one copy of the weights, not two
        self.session = None if lone_only else _ort_session(self.path)

    def _hidden(self, ids: np.ndarray, solo: bool) -> np.ndarray:
        if solo:
            session = _ort_session(self.path, min(self.workers, SOLO_THREADS))
        else:
            session = self.session or _ort_session(self.path)
        feeds = {"input_ids": ids[None, :], "attention_mask": np.ones((1, len(ids)), np.int64)}
        return session.run(None, feeds)[0][0]  # (seq, hidden)


class Ct2Runner(_PerTextRunner):
    """CTranslate2 on CPU (:mod:`indexer.encoding.ct2_build`): int8 weights, activations quantised per token and run."""

    def __init__(self, model_path: Path, pooling: str, workers: int | None = None):
        import ctranslate2

        super().__init__(pooling, workers)
        self.path = str(model_path)
        # one replica per worker thread, each on one core; its calls release the GIL
        self.encoder = ctranslate2.Encoder(
            self.path, device="cpu", compute_type="int8", intra_threads=1, inter_threads=self.workers
        )
        self._solo: Any = None

    def _hidden(self, ids: np.ndarray, solo: bool) -> np.ndarray:
        if solo and self._solo is None:
            import ctranslate2

            self._solo = ctranslate2.Encoder(
                self.path,
                device="cpu",
                compute_type="int8",
                inter_threads=1,
                intra_threads=min(self.workers, SOLO_THREADS),
            )
        out = (self._solo if solo else self.encoder).forward_batch([ids.tolist()])
        return np.asarray(out.last_hidden_state)[0]  # (seq, hidden)


class TorchRunner:
    """The sentence-transformers model's own transformer, without sentence-transformers' per-call overhead:
    length-sorted batches under a token budget (little padding), no attention mask for a lone text (PyTorch's
    SDPA then takes its unmasked kernel), pooling on the device and one copy back to the host at the end.

    On CPU a lone text (a query) goes to ``solo`` where one is given: the fused fp32 ONNX model
    (:func:`indexer.encoding.onnx_build.ensure_fp32_model`), same numerics class (cosine >= 0.9999 to fp32),
    without PyTorch's per-operator dispatch, which is most of a short text's time."""

    def __init__(
        self,
        st_model,
        pooling: str,
        bf16: bool = False,
        solo: Runner | None = None,
        solo_factory: Callable[[], Runner | None] | None = None,
    ):
        self.hidden = hidden_states(st_model)
        self._solo, self._solo_factory = solo, solo_factory
        self.device = st_model.device
        self.pooling = pooling
        self.bf16 = bf16
        self.pad_id = int(getattr(st_model.tokenizer, "pad_token_id", None) or 0)
        self.max_tokens = GPU_BATCH_TOKENS if self.device.type == "cuda" else CPU_BATCH_TOKENS

    @property
    def solo(self) -> Runner | None:
        """The lone-text runner, made by ``solo_factory`` on first use: a run that encodes batches only (an index
        run) never builds or opens it."""
        if self._solo_factory is not None:
            factory, self._solo_factory = self._solo_factory, None
            self._solo = factory()
        return self._solo

    @solo.setter
    def solo(self, runner: Runner | None) -> None:
        self._solo, self._solo_factory = runner, None

    def _batches(self, seqs: list[np.ndarray]) -> list[list[int]]:
        """Longest first, each batch at most ``max_tokens`` padded tokens."""
        order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
        batches: list[list[int]] = []
        for i in order:
            if batches and (len(batches[-1]) + 1) * len(seqs[batches[-1][0]]) <= self.max_tokens:
                batches[-1].append(i)
            else:
                batches.append([i])
        return batches

    def _forward(self, seqs: list[np.ndarray]):
        """(b,) unpadded texts -> (b, hidden) unit vectors, on the model's device."""
        import torch

        longest = len(seqs[0])
        ids = torch.full((len(seqs), longest), self.pad_id, dtype=torch.long)  # (b, seq)
        mask = torch.zeros((len(seqs), longest), dtype=torch.long)  # (b, seq)
        for row, s in enumerate(seqs):
            ids[row, : len(s)] = torch.from_numpy(s)
            mask[row, : len(s)] = 1
        pin = self.device.type == "cuda"
        ids = (ids.pin_memory() if pin else ids).to(self.device, non_blocking=pin)
        mask = (mask.pin_memory() if pin else mask).to(self.device, non_blocking=pin)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            hidden = self.hidden(ids, mask if len(seqs) > 1 else None).float()  # (b, seq, hidden)
        if self.pooling == "mean":
            m = mask.unsqueeze(-1).float()  # (b, seq, 1)
            vec = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)  # (b, hidden)
        else:
            vec = hidden[:, 0]  # (b, hidden)
        return torch.nn.functional.normalize(vec, dim=-1)

    def embed(self, seqs: list[np.ndarray], show_progress: bool = False) -> np.ndarray:
        import torch
        from tqdm.auto import tqdm

        if len(seqs) == 1 and self.solo is not None and self.device.type == "cpu":
            return self.solo.embed(seqs)  # (1, hidden)
        batches = self._batches(seqs)
        with torch.inference_mode():
            pooled = [self._forward([seqs[i] for i in b]) for b in tqdm(batches, disable=not show_progress)]
            vecs = torch.cat(pooled).cpu().numpy()  # (n, hidden), one device -> host copy
        out = np.zeros_like(vecs, dtype=np.float32)
        out[[i for b in batches for i in b]] = vecs
        return out


class PackedRunner:
    """bf16 on a GPU with no padding at all (:class:`indexer.encoding.gpu_encode.GPUEncoder`): token-budget batches of
    concatenated texts, attention per text on nested tensors, batches prepared on a CPU thread ahead of the GPU."""

    def __init__(self, st_model):
        import torch

        from indexer.encoding.gpu_encode import GPUEncoder

        self.encoder = GPUEncoder(
            st_model, dtype=torch.bfloat16, max_tokens=4 * GPU_BATCH_TOKENS, packed=True
        )

    def embed(self, seqs: list[np.ndarray], show_progress: bool = False) -> np.ndarray:
        vecs = self.encoder.encode_ids(seqs)  # (n, dim)
        return vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
