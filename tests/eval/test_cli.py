"""``e5search eval`` flags and outputs, driven through eval.cli with the fake encoder."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from eval import cli
from indexer.errors import ConfigError
from indexer.storage.store import read_index_manifest
from tests.fakes import FakeEncoder

TINY = Path(__file__).resolve().parents[1] / "fixtures" / "beir_tiny"


@pytest.fixture(autouse=True)
def fake_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_encoder", lambda args: FakeEncoder(dim=8192))


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(argv)


def test_eval_writes_json_and_report(tmp_path: Path, capsys: pytest.CaptureFixture):
    args = parse(
        [
            "--dataset",
            str(TINY),
            "--retrievers",
            "bm25,dense",
            "--json",
            str(tmp_path / "r.json"),
            "--report",
            str(tmp_path / "r.md"),
            "--cache-dir",
            str(tmp_path / "cache"),
        ]
    )
    assert cli.run(args) == 0
    out = capsys.readouterr().out
    assert "beir_tiny (test): 6 queries, 14 documents" in out and "| dense |" in out
    result = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert set(result) >= {"dataset", "split", "n_queries", "results", "significance", "config"}
    assert set(result["results"]["bm25"]) >= {"ndcg@10", "recall@100", "mrr@10", "map@100", "ci95"}
    assert (tmp_path / "r.png").exists() and "![scores](r.png)" in (tmp_path / "r.md").read_text(
        encoding="utf-8"
    )


def test_eval_needs_a_dataset_or_a_suite():
    with pytest.raises(ConfigError, match="give --dataset DIR"):
        cli.run(parse([]))
    with pytest.raises(ConfigError, match="needs --out DIR"):
        cli.run(parse(["--suite", "multilingual"]))


def test_standalone_main_reports_errors_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture):
    assert cli.main(["--dataset", str(TINY), "--split", "train", "--cache-dir", str(tmp_path)]) == 2
    assert "splits present: dev, malformed, test, unknown" in capsys.readouterr().err


def test_suite_from_the_command_line(data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    args = parse(
        [
            "--suite",
            "multilingual",
            "--out",
            str(tmp_path / "suite"),
            "--data-root",
            str(data_root),
            "--parts",
            "bitext,sts",
            "--bitext-languages",
            "deu",
            "--cache-dir",
            str(tmp_path / "work"),
        ]
    )
    assert cli.run(args) == 0
    assert "multilingual.md" in capsys.readouterr().out
    result = json.loads((tmp_path / "suite" / "multilingual.json").read_text(encoding="utf-8"))
    assert set(result) == {"config", "bitext", "sts"}


def test_chunking_flags_reach_the_index_and_its_cache_key(tmp_path: Path):
    common = ["--dataset", str(TINY), "--retrievers", "dense", "--cache-dir", str(tmp_path / "cache")]
    assert cli.run(parse([*common, "--json", str(tmp_path / "default.json")])) == 0
    flags = ["--chunk-size", "256", "--chunk-overlap", "0", "--max-title-tokens", "16"]
    assert cli.run(parse([*common, *flags, "--json", str(tmp_path / "short.json")])) == 0
    default = json.loads((tmp_path / "default.json").read_text(encoding="utf-8"))["config"]
    short = json.loads((tmp_path / "short.json").read_text(encoding="utf-8"))["config"]
    assert (default["chunk_size"], default["chunk_overlap"], default["max_title_tokens"]) == (512, 32, 48)
    assert default["index_dir"].endswith("-c512/index")  # indexes cached before the flags keep their key
    assert (short["chunk_size"], short["chunk_overlap"], short["max_title_tokens"]) == (256, 0, 16)
    assert short["index_dir"].endswith("-c256-o0-t16/index")
    manifest = read_index_manifest(short["index_dir"])
    assert manifest["config"]["chunking"] == {"chunk_size": 256, "chunk_overlap": 0, "max_title_tokens": 16}


def test_chunking_flags_are_validated():
    with pytest.raises(ConfigError, match="chunk_overlap=200"):
        cli.run(parse(["--dataset", str(TINY), "--chunk-size", "256", "--chunk-overlap", "200"]))
