"""The REST API against the CLI: the same records as ``e5search search --json`` and ``info --json``, batches,
the token, the limits, and the errors' JSON bodies. A real uvicorn server on 127.0.0.1, real HTTP (httpx)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import indexer.search.index
from e5search import cli
from tests.fakes import FakeEncoder
from tests.serve.conftest import ROOT, client

QUERIES = ["Wie backt man Brot am Rhein?", "tea 茶", "Волга", "glaciers melting", "paella"]


def _cli_json(capsys, monkeypatch, *args: str) -> list[dict]:
    """What ``e5search search ... --json`` prints, one record per line, run in this process with the fake."""
    monkeypatch.setattr(indexer.search.index, "encoder_for_index", lambda manifest, model=None: FakeEncoder())
    capsys.readouterr()
    assert cli.main(["search", *args]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def _untimed(record: dict) -> dict:
    assert record.pop("timings_ms")["total"] > 0  # timings differ run to run; everything else must not
    return record


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_search_answers_exactly_what_the_cli_prints(api, folder_index, capsys, monkeypatch, mode):
    index = str(folder_index[1])
    for query in QUERIES:
        expected = _cli_json(
            capsys, monkeypatch, query, "--index", index, "--mode", mode, "-k", "4", "--json"
        )
        got = api.post("/search", json={"query": query, "mode": mode, "k": 4})
        assert got.status_code == 200, got.text
        assert _untimed(got.json()) == _untimed(expected[0])
        assert expected[0]["hits"], query  # the comparison is about something


def test_a_batch_answers_what_search_queries_prints(api, folder_index, tmp_path, capsys, monkeypatch):
    queries = tmp_path / "q.jsonl"
    items = [{"_id": f"q{i}", "text": q} for i, q in enumerate(QUERIES)]
    queries.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in items), encoding="utf-8")
    expected = _cli_json(capsys, monkeypatch, "--queries", str(queries), "--index", str(folder_index[1]))
    got = api.post("/search", json={"queries": items})
    assert got.status_code == 200, got.text
    assert [_untimed(r) for r in got.json()] == [_untimed(r) for r in expected]
    plain = api.post("/search", json={"queries": QUERIES, "k": 3, "mode": "bm25"}).json()
    assert [r["query"] for r in plain] == QUERIES and all("_id" not in r for r in plain)


def test_filters_are_the_cli_flags(api, folder_index, capsys, monkeypatch):
    index = str(folder_index[1])
    expected = _cli_json(
        capsys, monkeypatch, "Brot", "--index", index, "--lang", "de", "--type", "txt", "--json"
    )
    got = api.post("/search", json={"query": "Brot", "lang": "de", "type": "txt"}).json()
    assert _untimed(got) == _untimed(expected[0])
    assert got["hits"] and {h["lang"] for h in got["hits"]} == {"de"}


def test_info_is_what_info_json_prints(api, folder_index, capsys):
    assert cli.main(["info", "--index", str(folder_index[1]), "--json"]) == 0
    expected = json.loads(capsys.readouterr().out)
    got = api.get("/info")
    assert got.status_code == 200
    assert got.json() == expected
    assert got.json()["chunks"] > 0 and got.json()["machine"]["auto"]


def test_the_token_guards_every_route_but_health(api, served):
    url = str(api.base_url)
    for token in (None, "wrong", "test-token-3f9"):
        with client(url, token) as other:
            for method, path, body in (
                ("POST", "/search", {"query": "tea"}),
                ("GET", "/info", None),
                ("POST", "/index", None),
                ("GET", "/jobs/x", None),
            ):
                got = other.request(method, path, json=body)
                assert got.status_code == 401, (token, path)
                assert "Bearer" in got.json()["error"] and got.headers["www-authenticate"] == "Bearer"
            assert other.get("/health").json() == {"status": "ok"}
    with client(url, None) as other:  # not sent as Bearer: refused too
        assert other.get("/info", headers={"Authorization": "Basic dGVzdA=="}).status_code == 401
    assert api.get("/info").status_code == 200
    assert api.get("/openapi.json").json()["paths"].keys() >= {"/search", "/info", "/index", "/jobs/{job_id}"}


def test_limits_are_4xx_with_a_message(api):
    def error(status: int, **kw) -> str:
        got = api.post("/search", **kw)
        assert got.status_code == status, got.text
        return got.json()["error"]

    assert "empty query" in error(422, json={"query": "   "})
    assert "k=1001" in error(422, json={"query": "tea", "k": 1001})
    assert "k=0" in error(422, json={"query": "tea", "k": 0})
    assert "limit is 2000" in error(422, json={"query": "tea " * 600})
    assert "split the batch" in error(422, json={"queries": ["tea"] * 257})
    assert "exactly one" in error(422, json={"query": "tea", "queries": ["tea"]})
    assert "exactly one" in error(422, json={"k": 3})
    assert error(422, json={"query": "tea", "mode": "semantic"}).startswith("mode:")
    assert error(422, json={"query": "tea", "colour": "red"}).startswith("colour:")
    assert "unknown language" in error(422, json={"query": "tea", "lang": "xx"})
    as_json = {"content-type": "application/json"}
    assert "not valid JSON" in error(422, content=b'{"query": ', headers=as_json)
    assert "body is empty" in error(422, content=b"", headers=as_json)
    assert "not a JSON object" in error(422, content=b'["tea"]', headers=as_json)
    assert "no reranker configured" in error(422, json={"query": "tea", "rerank": True})
    assert "no route GET /search" in api.get("/search").json()["error"]
    big = json.dumps({"query": "tea", "pad": "x" * 1_100_000})
    assert "over the limit of 1048576 bytes" in error(
        413, content=big, headers={"content-type": "application/json"}
    )
    chunks = (b" " * 65536 for _ in range(20))  # no Content-Length: counted as it arrives
    assert "over the limit" in error(413, content=chunks, headers={"content-type": "application/json"})
    assert api.post("/search", json={"query": "tea"}).status_code == 200  # and the server still answers


def test_only_loopback_host_names_are_answered(api):
    got = api.get("/health", headers={"Host": "attacker.example:8000"})
    assert got.status_code == 400 and "not served" in got.json()["error"]
    assert api.get("/health", headers={"Host": "localhost:1234"}).status_code == 200


def test_help_imports_no_fastapi_uvicorn_torch_or_faiss():
    code = (
        "import sys, e5search.cli as c\n"
        "try:\n    c.main(['serve', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'faiss', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert "--token" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_cli_refuses_a_network_host_without_a_token_and_a_busy_port(folder_index, capsys, monkeypatch):
    monkeypatch.delenv("E5SEARCH_TOKEN", raising=False)
    index = str(folder_index[1])
    assert cli.main(["serve", "--index", index, "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "E5SEARCH_TOKEN" in err
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert cli.main(["serve", "--index", index, "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "choose another --port" in err
    assert cli.main(["serve", "--index", str(Path(index).parent / "none")]) == 2
    assert "e5search index" in capsys.readouterr().err
