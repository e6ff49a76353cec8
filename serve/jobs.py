"""Indexing jobs started over the API: ``build_index`` on a background thread, one at a time, polled by id.

A job runs the same incremental, crash-safe ``build_index`` as ``e5search index``, with the server's encoder (the
model is not loaded twice), under the same writer lock: a second job of this server is refused before it starts
(:class:`JobRunning`, answered 409), and a writer in another process makes the job fail with the lock's message.
The served index follows the new generation on its next query. Stopping the server mid-job is a crash as far as
the index is concerned: the previous generation stays whole and the next run resumes from the embedding cache.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from indexer.build.job import build_index
from indexer.errors import E5SearchError
from serve.served import ServedIndex

logger = logging.getLogger(__name__)

KEEP_FINISHED = 100  # finished jobs remembered for GET /jobs/{id}; older ones are forgotten


class JobRunning(E5SearchError):
    """This server is already running an indexing job."""


@dataclass
class Job:
    id: str
    path: str
    state: str = "running"  # running | done | failed
    stage: str = "starting"
    done: int = 0
    total: int = 0
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    summary: dict | None = None  # IndexSummary.to_json() once done
    error: str | None = None  # the one-line error once failed

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "path": self.path,
            "state": self.state,
            "progress": {"stage": self.stage, "done": self.done, "total": self.total},
            "started_at": round(self.started_at, 3),
            "finished_at": None if self.finished_at is None else round(self.finished_at, 3),
            "summary": self.summary,
            "error": self.error,
        }


class Jobs:
    """The server's indexing jobs: at most one running, the last :data:`KEEP_FINISHED` finished ones kept."""

    def __init__(self, served: ServedIndex):
        self.served = served
        self._lock = threading.Lock()
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._running: Job | None = None
        self._thread: threading.Thread | None = None

    def start(self, path: str | None = None) -> Job:
        """Start indexing ``path`` (absolute, or relative to the index's source folder; default: that folder)
        into the served index. Raises :class:`JobRunning` while a job runs."""
        given = Path(path).expanduser() if path else None
        source = (
            str(given) if given and given.is_absolute() else str(Path(self.served.source_root(), path or ""))
        )
        with self._lock:
            if self._running is not None:
                raise JobRunning(
                    f"indexing job {self._running.id} is still running: poll GET /jobs/{self._running.id} "
                    "and start the next one when it is done"
                )
            job = Job(id=uuid.uuid4().hex, path=source)
            self._running = job
            self._jobs[job.id] = job
            while len(self._jobs) > KEEP_FINISHED + 1:
                self._jobs.popitem(last=False)
        self._thread = threading.Thread(target=self._run, args=(job,), name=f"index-{job.id}", daemon=True)
        self._thread.start()
        return job

    def get(self, job_id: str) -> dict | None:
        """The job's record (``Job.to_json``), or None for an unknown or forgotten id."""
        with self._lock:
            job = self._jobs.get(job_id)
            return job.to_json() if job else None

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the running job, if any (tests, shutdown)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _progress(self, job: Job, stage: str, done: int, total: int) -> None:
        job.stage, job.done, job.total = stage, done, total

    def _run(self, job: Job) -> None:
        summary, error = None, None
        try:
            summary = build_index(
                job.path,
                self.served.location,
                self.served.index.index_config,
                encoder=self.served.encoder,  # type: ignore[arg-type]
                progress=lambda stage, done, total: self._progress(job, stage, done, total),
            ).to_json()
        except E5SearchError as exc:
            error = str(exc)
        except Exception as exc:  # the job's thread must not die silently: the error is the job's answer
            logger.exception("indexing job %s failed", job.id)
            error = f"{type(exc).__name__}: {exc}"
        with self._lock:  # a poller sees the finished job whole: state, summary or error, finish time
            job.summary, job.error, job.finished_at = summary, error, time.time()
            job.state = "failed" if error else "done"
            self._running = None
        logger.info("indexing job %s %s", job.id, job.state)
