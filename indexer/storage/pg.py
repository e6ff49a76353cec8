"""A shared index in PostgreSQL + pgvector: the same tables as the folder index, vectors in the database.

Files, documents, chunks and the manifest are the SQLAlchemy models of :mod:`indexer.storage.store`, unchanged;
vectors live in ``embeddings`` (:mod:`indexer.storage.pg_vectors`). What a folder index gets from files and
``flock``, PostgreSQL gives here:

- the generation switch is the writer's one transaction (rows, vectors and the manifest's generation commit
  together; a crash rolls all of it back), so no generation files exist;
- readers open every query in a REPEATABLE READ transaction (one snapshot: old generation or new, never a mix);
- one writer at a time through a session-level advisory lock, which the server drops when the writer's
  connection dies (kill -9 included), so no stale lock is ever left.

Non-goals: BM25 (derived per replica from the chunks, :mod:`indexer.search.reading`), running a server.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.orm import Session

from indexer.cache import cache_home
from indexer.errors import ConfigError, IndexBusyError, IndexStateError
from indexer.storage.store import Base, read_manifest

SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
# pg_advisory_lock takes a bigint; this one is "e5search" in ASCII, the writer lock of the index in a database
WRITER_LOCK_KEY = int.from_bytes(b"e5search", "big") & ((1 << 63) - 1)
CONNECT_TIMEOUT_S = 10


def is_database_url(location: object) -> bool:
    """True for a PostgreSQL URL (``postgresql://user@host:port/db``), False for a folder.

    >>> is_database_url("postgresql://e5@127.0.0.1:5432/search"), is_database_url(".e5search/index")
    (True, False)
    """
    return isinstance(location, str) and location.split("://", 1)[0].lower() in SCHEMES and "://" in location


def engine_url(location: str) -> URL:
    """The SQLAlchemy URL for ``location``, on the psycopg 3 driver whichever PostgreSQL scheme it names."""
    try:
        url = make_url(location)
        url.port  # noqa: B018 - make_url parses the port lazily: a non-number fails here
    except (ArgumentError, ValueError):
        raise ConfigError(
            f"--store {location!r} is not a database URL: write postgresql://USER@HOST:PORT/DATABASE"
        ) from None
    if not url.database:
        raise ConfigError(
            f"--store {url.render_as_string(hide_password=True)} names no database: "
            "write postgresql://USER@HOST:PORT/DATABASE"
        )
    return url.set(drivername="postgresql+psycopg")


def _first_line(exc: DBAPIError) -> str:
    return (str(exc.orig).strip().splitlines() or ["no reason given"])[0]


class PgStore:
    """An index in one PostgreSQL database: where it is, how to connect, its manifest and its writer lock."""

    kind = "postgresql"

    def __init__(self, location: str):
        self.url = engine_url(location)
        self.location = self.url.set(drivername="postgresql").render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"PgStore({self.location})"

    def engine(self, create: bool = False, snapshot: bool = False) -> Engine:
        """An engine on the database; ``snapshot`` runs every transaction at REPEATABLE READ (readers),
        ``create`` makes the tables (and the vector extension) if missing. Unreachable servers and refused
        logins become one-line :class:`ConfigError`\\ s naming the URL."""
        engine = create_engine(
            self.url,
            isolation_level="REPEATABLE READ" if snapshot else "READ COMMITTED",
            pool_pre_ping=True,
            connect_args={"connect_timeout": CONNECT_TIMEOUT_S, "application_name": _client_name()},
        )
        if create:
            with self.reach():
                _create_schema(engine)
        return engine

    @contextmanager
    def reach(self) -> Iterator[None]:
        """Turn a failure to connect into an error that names the server and the fix."""
        try:
            yield
        except OperationalError as exc:
            raise ConfigError(
                f"cannot use PostgreSQL at {self.location} ({_first_line(exc)}): start the server, or correct "
                "--store (postgresql://USER@HOST:PORT/DATABASE)"
            ) from None

    def read_manifest(self, complete: bool = True) -> dict[str, Any]:
        """The index's manifest; with ``complete`` an :class:`IndexStateError` unless a run finished."""
        engine = self.engine()
        try:
            with self.reach(), Session(engine) as session:
                exists = session.scalar(text("SELECT to_regclass('manifest') IS NOT NULL"))
                manifest = read_manifest(session) if exists else {}
        finally:
            engine.dispose()
        if complete and not manifest.get("generation"):
            raise IndexStateError(
                f"no complete index in {self.location} yet: index a folder into it with "
                f"`e5search index FOLDER --store {self.location}`"
            )
        return manifest

    @contextmanager
    def writer_lock(self, wait: bool = False) -> Iterator[None]:
        """Hold the database's writer lock for the ``with`` block: a session-level advisory lock on a
        connection of its own, so the server releases it the moment the holder's connection ends."""
        engine = self.engine()
        try:
            with self.reach(), engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                if wait:
                    conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": WRITER_LOCK_KEY})
                elif not conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": WRITER_LOCK_KEY}):
                    raise IndexBusyError(
                        f"the index in {self.location} is being updated by {_holder(conn)}: wait for that run "
                        "to finish, or pass --wait to queue behind it"
                    )
                try:
                    yield
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": WRITER_LOCK_KEY})
        finally:
            engine.dispose()

    def local_dir(self, manifest: dict) -> Path:
        """This machine's folder for what it derives from the index (BM25, the embedding cache), keyed by the
        store's identity so that two databases never share one."""
        return cache_home() / "pg" / store_id(manifest)

    def embedding_cache(self, manifest: dict) -> Path:
        """Passage embeddings by text hash, local to the writer's machine: a killed run resumes from it."""
        folder = self.local_dir(manifest)
        folder.mkdir(parents=True, exist_ok=True)
        return folder / "embcache.sqlite"

    def size_on_disk(self, session: Session) -> dict[str, int]:
        """Bytes per table, indexes and TOAST included (what ``e5search info`` shows)."""
        names = [*Base.metadata.tables, "embeddings"]
        rows = session.execute(
            text(
                "SELECT relname, pg_total_relation_size(oid) FROM pg_class "
                "WHERE relname = ANY(:names) AND relkind = 'r' AND pg_table_is_visible(oid)"
            ),
            {"names": names},
        )
        return {name: int(size) for name, size in rows}


def _client_name() -> str:
    return f"e5search PID {os.getpid()} on {socket.gethostname()}"[:63]


def _holder(conn: Connection) -> str:
    row = conn.execute(
        text(
            "SELECT a.application_name, a.client_addr, a.backend_start FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.objid = (:k & 4294967295) AND l.classid = (:k >> 32) LIMIT 1"
        ),
        {"k": WRITER_LOCK_KEY},
    ).first()
    if row is None:
        return "another process"
    name, addr, since = row
    return f"{name or 'a client'}{f' from {addr}' if addr else ''} since {since:%Y-%m-%dT%H:%M:%S%z}"


def _create_schema(engine: Engine) -> None:
    """Tables, the vector extension and the store's identity (a UUID in the manifest: replicas key their
    local BM25 and embedding caches by it). Idempotent; the vector table is made by the first writer, which
    knows the dimension (:func:`indexer.storage.pg_vectors.ensure_table`)."""
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k + 1)"), {"k": WRITER_LOCK_KEY})  # one creator
        try:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
        except DBAPIError as exc:
            raise ConfigError(
                f"the pgvector extension is not available ({_first_line(exc)}): install pgvector 0.8 on the "
                "server, or have its owner run CREATE EXTENSION vector in this database"
            ) from None
        Base.metadata.create_all(conn)
        conn.execute(
            text("INSERT INTO manifest (key, value) VALUES ('store_id', :v) ON CONFLICT (key) DO NOTHING"),
            {"v": f'"{uuid.uuid4().hex}"'},
        )


def store_id(manifest: dict) -> str:
    """The identity the store's manifest records (see :func:`_create_schema`)."""
    value = manifest.get("store_id")
    if not value:
        raise IndexStateError(
            "this PostgreSQL index has no store_id in its manifest: run `e5search index` on it"
        )
    return str(value)
