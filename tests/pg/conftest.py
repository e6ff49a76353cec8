"""A real PostgreSQL 18 + pgvector 0.8 server for the ``pg`` tests: one per session, a fresh database per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from tests.pg.server import PgServer

_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """Started once (initdb + pg_ctl as a non-root system user when run as root), stopped and deleted at the
    end. Durability settings are off: these tests kill clients, never the server."""
    server = PgServer.start(settings=("fsync=off", "synchronous_commit=off", "full_page_writes=off"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A URL to an empty database of its own (the vector extension made)."""
    return pg_server.create_database(f"e5test_{next(_numbers)}")
