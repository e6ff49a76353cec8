"""``e5search eval`` flags and outputs, driven through eval.cli with the fake encoder."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from eval import cli
from indexer.errors import ConfigError
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
