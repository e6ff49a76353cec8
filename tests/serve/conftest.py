"""Fixtures for the REST API tests: a small multilingual index built with the fake encoder, served by a real
uvicorn server on a free 127.0.0.1 port (a thread of the test process), and an HTTP client for it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from indexer.build.job import build_index
from serve.config import ServeConfig
from serve.served import ServedIndex
from serve.server import ServerThread
from tests.fakes import FakeEncoder

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "tests" / "fixtures" / "docs"
TOKEN = "test-token-3f9a"


@pytest.fixture()
def folder_index(tmp_path: Path) -> tuple[Path, Path]:
    """(folder, index): a copy of the fixture documents (10 languages, 8 formats), indexed with the fake."""
    folder, index = tmp_path / "docs", tmp_path / "idx"
    shutil.copytree(DOCS, folder)
    build_index(folder, index, encoder=FakeEncoder())
    return folder, index


def client(url: str, token: str | None = TOKEN) -> httpx.Client:
    """A client of ``url`` that never goes through a proxy from the environment."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url, headers=headers, trust_env=False, timeout=60)


@pytest.fixture()
def served(folder_index: tuple[Path, Path]) -> Iterator[ServedIndex]:
    served = ServedIndex(str(folder_index[1]), encoder=FakeEncoder())
    served.warm_up()
    yield served
    served.close()


@pytest.fixture()
def api(served: ServedIndex) -> Iterator[httpx.Client]:
    """A client with the token, of a server that requires it."""
    with ServerThread(served, ServeConfig(port=0, token=TOKEN)) as url, client(url) as http:
        yield http
