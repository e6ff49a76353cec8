"""``e5search train``: every stage has --help, errors exit 2 naming the fix, and a TOML recipe runs end to end."""

from __future__ import annotations

import argparse
import json

import pytest

from trainer import cli


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="e5search train")
    cli.add_arguments(parser)
    return parser


@pytest.mark.parametrize("stage", cli.STAGES)
def test_every_stage_has_help(stage, capsys):
    with pytest.raises(SystemExit) as exc:
        _parser().parse_args([stage, "--help"])
    assert exc.value.code == 0
    assert f"e5search train {stage}" in capsys.readouterr().out


def test_contrastive_flags_map_to_the_config():
    from trainer.config import ContrastiveConfig

    args = _parser().parse_args(
        [
            "contrastive",
            "--pairs",
            "p.jsonl",
            "--output",
            "o",
            "--max-steps",
            "7",
            "--batch-size",
            "64",
            "--mini-batch-size",
            "0",
            "--temperature",
            "0.02",
        ]
    )
    config = ContrastiveConfig(**cli._given(args, ContrastiveConfig))
    assert (config.max_steps, config.batch_size, config.mini_batch_size, config.temperature) == (
        7,
        64,
        None,
        0.02,
    )
    assert config.scale == 50.0


def test_no_stage_and_bad_data_exit_2(tmp_path, capsys):
    assert cli.run(_parser().parse_args([])) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "passage": "p"}\n{"query": "q2"}\n', encoding="utf-8")
    args = _parser().parse_args(["contrastive", "--pairs", str(bad), "--output", str(tmp_path / "m")])
    assert cli.run(args) == 2
    assert "bad.jsonl, line 2: missing field 'passage'" in capsys.readouterr().err


def test_recipe_runs_its_stages_and_skips_them_when_done(tiny_model, pairs_path, tmp_path, capsys):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        f"""
[pairs]
output = "work/pairs.jsonl"
jsonl = "{pairs_path}"
[filter]
output = "work/filtered.jsonl"
model = "{tiny_model}"
top_k = 16
pool_size = 16
[contrastive]
output = "work/model"
model = "{tiny_model}"
max_steps = 1
batch_size = 4
mini_batch_size = 2
""",
        encoding="utf-8",
    )
    assert cli.run(_parser().parse_args(["--config", str(recipe)])) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["pairs"]["counts"]["kept"] == 16 and result["filter"]["kept"] == 16
    assert (tmp_path / "work" / "model" / "e5search_train.json").is_file()
    assert cli.run(_parser().parse_args(["--config", str(recipe)])) == 0  # everything up to date
    (tmp_path / "bad.toml").write_text("[train]\n", encoding="utf-8")
    assert cli.run(_parser().parse_args(["--config", str(tmp_path / "bad.toml")])) == 2
    assert "unknown sections ['train']" in capsys.readouterr().err
