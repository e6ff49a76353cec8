"""Encoding on Ray workers: a :class:`TextEncoder` whose passages are encoded by Ray actors (``index --ray``).

The indexing job does not change: it scans, reads and chunks here, and hands groups of texts to an encoder
through the embedding cache (:class:`indexer.build.pipeline.CachedEncoding`). :class:`RayEncoder` is that
encoder: it splits each group into parts, sends them to N actors at once and gathers the vectors in order. Each
actor builds its encoder once from an :class:`EncoderSpec` (plain data: an importable factory and its
arguments, never a pickled model), with the backend this machine resolved, so its vectors are the ones a local
run would store; its cache key is checked against the local encoder's before any text is sent. A part lost with
a dead worker (``RayActorError``) is sent again, to the next actor, while Ray restarts the dead one
(``max_restarts``); the group reaches the cache only when whole, so a rerun skips it and the index never holds
a chunk twice. GPU workers (a cluster with GPUs, fp32-class numerics) run the GPU path (``torch-bf16``:
:mod:`indexer.encoding.gpu_encode`), whose vectors share the fp32 fingerprint.

Ray is imported only here, only when ``--ray`` is given. Non-goals: reading or chunking on the workers (the
scan stays on the machine that holds the folder), Ray Data pipelines, autoscaling.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import math
import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexer.config import ModelConfig
from indexer.encoding.backends import NUMERICS
from indexer.encoding.encoder import Encoder, TextEncoder, check_encoder, model_for_index
from indexer.errors import ConfigError, E5SearchError, MissingExtra

logger = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")
# Ray's switch for a one-machine cluster: with it off, Ray keeps 127.0.0.1 instead of swapping in the
# machine's network address (which it does even for --node-ip-address=127.0.0.1)
SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
MAX_TRIES = 4  # sends of one part before the run gives up (each to the next actor)
MAX_RESTARTS = 4  # restarts of one actor by Ray
START_TIMEOUT_S = 900.0  # actors loading the model (a first int8 build on a worker takes minutes)


class WorkerLost(E5SearchError):
    """A part of a group failed on every try: the workers keep dying."""


@dataclasses.dataclass(frozen=True)
class EncoderSpec:
    """How a worker builds its encoder: ``factory`` (``"module:name"``) called with ``kwargs``.

    >>> EncoderSpec("indexer.encoding.encoder:Encoder", {"config": ModelConfig(backend="torch")}).build()  # doctest: +SKIP
    """

    factory: str
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)

    def build(self) -> TextEncoder:
        module, _, name = self.factory.partition(":")
        return getattr(importlib.import_module(module), name)(**self.kwargs)


class _Worker:
    """One Ray actor: its encoder built once, then passages encoded until the run ends."""

    def __init__(self, spec: EncoderSpec):
        self.encoder = spec.build()

    def identity(self) -> dict:
        described = self.encoder.describe()
        return {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "cache_key": self.encoder.cache_key,
            "dim": self.encoder.dim,
            "backend": described.get("backend", ""),
            "on_gpu": bool(self.encoder.on_gpu),
        }

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode_passages(texts)  # (len(texts), dim)


# --------------------------------------------------------------------------------------------- the cluster
def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--ray {address!r}: give HOST:PORT of a Ray head (ray start --head), or auto")
    return host.strip("[]"), int(port)


def _running_cluster() -> str | None:
    """``auto``'s target: ``$RAY_ADDRESS``, else the cluster the last ``ray start`` on this machine wrote down
    (Ray's ``ray_current_cluster`` file) if it answers, else ``None`` (start a local one)."""
    if os.environ.get("RAY_ADDRESS", "").strip():
        return os.environ["RAY_ADDRESS"].strip()
    tmp = os.environ.get("RAY_TMPDIR") or os.environ.get("TMPDIR") or "/tmp"
    record = Path(tmp) / "ray" / "ray_current_cluster"
    address = record.read_text().strip() if record.is_file() else ""
    return address if address and _answers(*_host_port(address)) else None


def _answers(host: str, port: int, timeout: float = 5.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def connect(address: str) -> bool:
    """Join the Ray cluster at ``address`` (``HOST:PORT``), or for ``auto`` the one running here, else start a
    local one on 127.0.0.1 without a dashboard. Returns whether this call started the cluster."""
    target = _running_cluster() if address == "auto" else address
    if target is not None:
        host, port = _host_port(target)
        if not _answers(host, port):
            raise ConfigError(
                f"--ray {target}: no Ray cluster answers there; start one (ray start --head --port {port}) "
                "or use --ray auto"
            )
    if target is None or host in LOOPBACK:
        os.environ.setdefault(SINGLE_MACHINE_ENV, "0")  # read when ray is imported
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # offline tool: no usage report
    try:
        import ray
    except ImportError:
        raise MissingExtra("ray", "ray") from None
    if ray.is_initialized():
        return False
    quiet: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    if target is None:
        ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, **quiet)
        return True
    try:  # "auto" lets Ray use this machine's auth token for a cluster it finds; an address given needs
        ray.init(address="auto" if address == "auto" else target, **quiet)  # RAY_AUTH_MODE=token set
    except ConnectionError as exc:
        raise ConfigError(
            f"--ray {target}: Ray could not join the cluster ({exc}); if it uses token authentication, set "
            "RAY_AUTH_MODE=token and its token (RAY_AUTH_TOKEN or ~/.ray/auth_token)"
        ) from None
    return False


# ------------------------------------------------------------------------------------------------ encoder
class RayEncoder:
    """A :class:`TextEncoder` whose passages are encoded by ``workers`` Ray actors; everything else (name,
    fingerprint, cache key, tokenizer, queries, ``describe()``) is the local encoder's, so an index built
    through Ray is the index a local run builds, and either run reuses the other's embedding cache.

    >>> connect("auto")                                                    # doctest: +SKIP
    >>> enc = RayEncoder(local, EncoderSpec("tests.fakes:FakeEncoder"), workers=2)  # doctest: +SKIP
    >>> enc.encode_passages(["one", "two", "three"]).shape                 # (3, dim), in order
    """

    def __init__(
        self,
        local: TextEncoder,
        spec: EncoderSpec,
        workers: int,
        part_size: int = 32,
        num_gpus: float = 0.0,
        started_cluster: bool = False,
        num_cpus: float = 1.0,
    ):
        import ray

        if workers < 1 or part_size < 1:
            raise ConfigError(f"--ray-workers {workers}: give at least 1 worker")
        self.local, self.part_size, self.started_cluster = local, part_size, started_cluster
        self.name, self.dim, self.max_length = local.name, local.dim, local.max_length
        self.query_prompt, self.passage_prompt = local.query_prompt, local.passage_prompt
        self.redone = 0  # texts sent again after a worker was lost
        env = {k: os.environ[k] for k in ("E5SEARCH_HOME",) if k in os.environ}  # where the model is built
        actor = ray.remote(_Worker).options(
            num_cpus=0 if num_gpus else num_cpus,  # Ray sets OMP_NUM_THREADS (torch's threads) to this
            num_gpus=num_gpus,
            max_restarts=MAX_RESTARTS,
            max_task_retries=0,  # a lost part is sent again by encode_passages, to another actor
            scheduling_strategy="SPREAD",
            runtime_env={"env_vars": env} if env else None,
        )
        self.actors: list[Any] = [actor.remote(spec) for _ in range(workers)]  # ray ActorHandles
        self.identities = self._check(self._ask_identities(START_TIMEOUT_S))

    def _ask_identities(self, timeout: float) -> list[dict]:
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError

        try:
            return ray.get([a.identity.remote() for a in self.actors], timeout=timeout)
        except GetTimeoutError:
            raise ConfigError(
                f"{len(self.actors)} Ray worker(s) did not start within {timeout:.0f} s; the cluster has "
                f"{ray.cluster_resources()}: give fewer --ray-workers or add nodes"
            ) from None
        except RayActorError as exc:
            first = str(exc).strip().splitlines()
            raise ConfigError(
                f"a Ray worker could not load the encoder ({first[-1] if first else exc}): install e5search "
                "and the model on every worker node"
            ) from None

    def _check(self, identities: list[dict]) -> list[dict]:
        for who in identities:
            if who["cache_key"] != self.local.cache_key or who["dim"] != self.local.dim:
                raise ConfigError(
                    f"the Ray worker on {who['host']} encodes as {who['cache_key']} (dim {who['dim']}), this "
                    f"machine as {self.local.cache_key} (dim {self.local.dim}): install the same e5search and "
                    "model on every node"
                )
        logger.info("Ray workers: %s", identities)
        return identities

    # ------------------------------------------------------------------------------ the local encoder's
    @property
    def fingerprint(self) -> str:
        return self.local.fingerprint

    @property
    def model_fingerprint(self) -> str:
        return self.local.model_fingerprint

    @property
    def cache_key(self) -> str:
        return self.local.cache_key

    @property
    def tokenizer(self):
        return self.local.tokenizer

    @property
    def on_gpu(self) -> bool:
        """Encoding happens in other processes, so reading runs on a thread beside it (the job's overlap)."""
        return True

    def describe(self) -> dict:
        return self.local.describe()

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.local.encode_queries(texts)

    # ------------------------------------------------------------------------------ passages on workers
    def _parts(self, n: int) -> list[np.ndarray]:
        """Positions of each part: strided, so each part gets long and short texts of a longest-first group."""
        count = max(len(self.actors), math.ceil(n / self.part_size))
        return [p for p in (np.arange(k, n, count) for k in range(count)) if len(p)]

    def encode_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        import ray
        from ray.exceptions import RayActorError

        out = np.zeros((len(texts), self.dim), dtype=np.float32)  # (n, dim)
        parts = self._parts(len(texts))
        pending = {self._send(k, parts[k], texts): (k, 1) for k in range(len(parts))}
        while pending:
            (ready,), _ = ray.wait(list(pending), num_returns=1)
            k, tries = pending.pop(ready)
            try:
                out[parts[k]] = ray.get(ready)
            except RayActorError as exc:
                if tries >= MAX_TRIES:
                    raise WorkerLost(
                        f"{len(parts[k])} texts failed on {tries} Ray workers in a row ({type(exc).__name__}); "
                        "what was encoded is cached: fix the workers and run again"
                    ) from None
                logger.warning("a Ray worker was lost (%s); sending its %d texts again", exc, len(parts[k]))
                self.redone += len(parts[k])
                pending[self._send(k + tries, parts[k], texts)] = (k, tries + 1)  # the next actor
        return out

    def _send(self, actor: int, positions: np.ndarray, texts: Sequence[str]):
        return self.actors[actor % len(self.actors)].encode.remote([texts[i] for i in positions])

    def worker_pids(self) -> list[int]:
        return [who["pid"] for who in self._ask_identities(START_TIMEOUT_S)]

    def close(self) -> None:
        """Stop the actors; disconnect (and stop the cluster if :func:`connect` started it)."""
        import ray

        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.actors = []
        ray.shutdown()


# ----------------------------------------------------------------------------------------- for an index
def worker_model(local: ModelConfig, backend: str, cluster_gpus: float) -> tuple[ModelConfig, float]:
    """(the model config each worker encodes with, GPUs per worker). GPU workers where the cluster has GPUs
    and the index's numerics are fp32-class (the GPU path for ``auto`` / ``torch-bf16``, fp32 ``torch`` when
    asked for); int8 backends run on CPU only, so their workers stay on CPU.

    >>> worker_model(ModelConfig(), "onnx-int8", 8)[1]
    0.0
    """
    if cluster_gpus and NUMERICS[backend] == "fp32":
        gpu_backend = "torch" if local.backend == "torch" else "torch-bf16"
        return dataclasses.replace(local, backend=gpu_backend, device="cuda"), 1.0  # type: ignore[arg-type]
    return dataclasses.replace(local, backend=backend, device="cpu"), 0.0  # type: ignore[arg-type]


def cpus_per_worker(cluster_cpus: float, workers: int) -> float:
    """The cluster's CPUs shared out among CPU workers (at least 1 each), so their threads do not oversubscribe.

    >>> cpus_per_worker(16, 2), cpus_per_worker(2, 4)
    (8.0, 1.0)
    """
    return float(max(1, int(cluster_cpus // workers)))


def ray_encoder_for_index(
    manifest: dict, model: ModelConfig | None, address: str, workers: int | None = None
) -> RayEncoder:
    """The :class:`RayEncoder` for the index whose manifest is ``manifest`` (``{}`` for a new one): the local
    encoder is :func:`~indexer.encoding.encoder.encoder_for_index`'s, except that a new index with
    ``backend='auto'`` on a cluster with GPUs gets fp32-class numerics (``torch``), which GPU workers share."""
    t0 = time.perf_counter()
    started = connect(address)  # before ray is imported: it reads the loopback switch at import
    import ray

    try:
        gpus = float(ray.cluster_resources().get("GPU", 0))
        chosen = model_for_index(manifest, model)
        if gpus and chosen.backend == "auto":
            chosen = dataclasses.replace(chosen, backend="torch")  # int8 runs on CPU only
        local = Encoder(chosen)
        check_encoder(manifest, local)
        config, per_worker = worker_model(chosen, local.backend, gpus)
        nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        count = workers or (int(gpus) if per_worker else max(1, nodes))
        spec = EncoderSpec("indexer.encoding.encoder:Encoder", {"config": config})
        cpus = cpus_per_worker(float(ray.cluster_resources().get("CPU", 1)), count)
        encoder = RayEncoder(local, spec, count, chosen.batch_size, per_worker, started, cpus)
    except BaseException:
        ray.shutdown()
        raise
    logger.info("%d Ray workers ready in %.1f s", count, time.perf_counter() - t0)
    return encoder
