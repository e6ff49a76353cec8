"""``e5search.toml`` (in the index folder, or ``--config FILE``): defaults for index, search and app; flags win over
the file, the file over built-in defaults; bad keys and values are one line naming the key, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from e5search.cli import build_parser, main
from indexer.configfile import file_defaults
from indexer.errors import ConfigError
from indexer.storage.store import read_index_manifest

DOCS = {
    "glaciers.md": "# Glaciers\n\nA glacier is a persistent body of dense ice that moves under its own weight.\n",
    "coffee.md": "# Kaffee\n\nKaffee wird aus den gerösteten Samen der Kaffeepflanze zubereitet.\n",
    "tea.md": "# Tea\n\nTea is an aromatic drink made by pouring hot water over cured tea leaves.\n",
    "volcano.md": "# Вулкан\n\nВулкан — геологическое образование на поверхности земной коры.\n",
}


def _search(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    capsys.readouterr()
    assert main(["search", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def indexed(
    tmp_path: Path,
    default_model_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Path:
    """``e5search index`` on a folder whose index folder already holds an e5search.toml."""
    monkeypatch.setenv("E5SEARCH_HOME", str(default_model_path.parents[1]))
    docs, index = tmp_path / "docs", tmp_path / "idx"
    docs.mkdir()
    index.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    (index / "e5search.toml").write_text(
        '[index]\nbackend = "torch"\nchunk_size = 64\nchunk-overlap = 8\n\n[search]\nmode = "bm25"\nk = 2\n',
        encoding="utf-8",
    )
    assert main(["index", str(docs), "--index", str(index), "--quiet", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["added"] == 4
    return index


def test_file_sets_chunking_backend_mode_and_k(indexed: Path, capsys: pytest.CaptureFixture[str]):
    config = read_index_manifest(indexed)["config"]
    assert config["chunking"]["chunk_size"] == 64 and config["chunking"]["chunk_overlap"] == 8
    assert config["model"]["backend"] == "torch"
    result = _search(capsys, "tea leaves and ice", "--index", str(indexed))
    assert result["mode"] == "bm25" and len(result["hits"]) == 2
    assert {h["doc_path"] for h in result["hits"]} == {"tea.md", "glaciers.md"}


def test_flags_win_over_the_file(indexed: Path, capsys: pytest.CaptureFixture[str]):
    result = _search(capsys, "tea leaves", "--index", str(indexed), "--mode", "dense", "-k", "3")
    assert result["mode"] == "dense" and len(result["hits"]) == 3
    result = _search(capsys, "tea leaves", "--index", str(indexed), "--mode", "hybrid")  # a flag equal to
    assert result["mode"] == "hybrid" and len(result["hits"]) == 2  # the built-in default still wins


def test_config_flag_names_another_file(indexed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    other = tmp_path / "mine.toml"
    other.write_text('[search]\nk = 1\nfusion = "rrf"\n', encoding="utf-8")
    result = _search(capsys, "ice", "--index", str(indexed), "--config", str(other))
    assert result["mode"] == "hybrid" and len(result["hits"]) == 1  # the index folder's file is not read
    assert result["fusion"]["method"] == "rrf"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[search]\nkk = 3\n", "[search] unknown key 'kk'; known: "),
        ('[search]\nmode = "fuzzy"\n', "mode = 'fuzzy': must be one of dense, bm25, hybrid"),
        ('[search]\nk = "ten"\n', "k = 'ten': must be int"),
        ("[search]\nrrf_k = 0\n", "[search] rrf_k=0: must be >= 1"),
        ("[search]\nrerank = 1\n", "rerank = 1: must be true or false"),
        ('[search]\nindex = "/elsewhere"\n', "unknown key 'index'"),  # per-run flags are no defaults
        ("[index]\nrechunk = true\n", "unknown key 'rechunk'"),  # a rebuild is asked for per run
        ("[index]\nchunk_size = 10\n", "[index] chunk_size=10: must be between 32 and 8192 tokens"),
        ('[index]\nbackend = "gpu"\n', "backend = 'gpu': must be one of auto, torch"),
        ("[serach]\nk = 3\n", "unknown section [serach]; use [index], [search], [app]"),
        ("[search\nk = 3\n", "not a readable TOML file"),
    ],
)
def test_bad_key_or_value_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], toml: str, message: str
):
    config = tmp_path / "bad.toml"
    config.write_text(toml, encoding="utf-8")
    command = "index" if "[index]" in toml else "search"
    argv = [str(tmp_path)] if command == "index" else ["anything"]
    with pytest.raises(ConfigError, match="bad.toml"):
        args = build_parser().parse_args([command, *argv, "--index", str(tmp_path / "idx")])
        file_defaults(config, command, args.config_parser)
    assert main([command, *argv, "--index", str(tmp_path / "idx"), "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "idx").exists()  # nothing was written


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["search", "x", "--index", str(tmp_path), "--config", str(tmp_path / "none.toml")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_app_section_sets_app_flags(tmp_path: Path):
    (tmp_path / "e5search.toml").write_text('[app]\nport = 8600\nallow_root = ["/data"]\n', encoding="utf-8")
    args = build_parser().parse_args(["app", "--index", str(tmp_path)])
    defaults = file_defaults(tmp_path / "e5search.toml", "app", args.config_parser)
    assert defaults == {"port": 8600, "allow_root": ["/data"]}
