"""Training data: bad files fail with the line and the fix; prompts in the data are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainer.data import Pair, TrainingDataError, check_no_prompts, columns, read_pairs, write_pairs


def _write(tmp_path: Path, lines: list) -> Path:
    path = tmp_path / "pairs.jsonl"
    path.write_text(
        "".join((json.dumps(x, ensure_ascii=False) if not isinstance(x, str) else x) + "\n" for x in lines),
        encoding="utf-8",
    )
    return path


GOOD = {"query": "кошка", "passage": "Кошка — домашнее животное."}


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"query": "q"}, "line 2: missing field 'passage'"),
        ({"query": "q", "passage": "   "}, "line 2: field 'passage' is empty"),
        ({"query": 3, "passage": "p"}, "line 2: field 'query' is int"),
        ({"query": "q", "passage": "p", "passsage": "typo"}, "line 2: unknown fields ['passsage']"),
        ("{not json", "line 2: not valid JSON"),
        ({"query": "q", "passage": "p", "negatives": ["n"]}, "line 2: mixed schemas"),
        (
            {"query": "q", "passage": "p", "negatives": [""]},
            "line 2: 'negatives' must be a list of non-empty",
        ),
    ],
)
def test_bad_record_names_the_line(tmp_path, bad, message):
    path = _write(tmp_path, [GOOD, bad])
    with pytest.raises(TrainingDataError, match=message.replace("[", r"\[").replace("]", r"\]")):
        read_pairs(path)


def test_teacher_scores_must_match_candidates(tmp_path):
    path = _write(tmp_path, [{"query": "q", "passage": "p", "negatives": ["n"], "teacher_scores": [1.0]}])
    with pytest.raises(TrainingDataError, match="line 1: 1 teacher_scores for 1 passage \\+ 1 negatives"):
        read_pairs(path)


def test_missing_file_and_empty_file(tmp_path):
    with pytest.raises(TrainingDataError, match="no such file"):
        read_pairs(tmp_path / "nope.jsonl")
    with pytest.raises(TrainingDataError, match="no records"):
        read_pairs(_write(tmp_path, []))


def test_round_trip_multilingual(tmp_path):
    pairs = [
        Pair("猫は何を食べる?", "猫は肉を食べる。", ("犬は骨を食べる。",), (2.0, -1.0), lang="ja"),
        Pair("ما هو القط؟", "القط حيوان أليف.", ("الكلب حيوان.",), (1.0, 0.5), task="qa"),
    ]
    write_pairs(tmp_path / "p.jsonl.gz", pairs)
    assert read_pairs(tmp_path / "p.jsonl.gz") == pairs


def test_prompts_in_the_data_are_refused():
    with pytest.raises(TrainingDataError, match="record 2 starts with the prompt 'query: '"):
        check_no_prompts([Pair("a", "b"), Pair("query: a", "b")], ["query: ", "passage: "])
    check_no_prompts([Pair("a query: here", "b")], ["query: ", ""])  # only a leading prompt counts


def test_columns_layout():
    cols = columns([Pair("q", "p", ("n1", "n2"), (3.0, 2.0, 1.0))], num_negatives=2, with_labels=True)
    assert list(cols) == ["anchor", "positive", "negative_1", "negative_2", "label"]
    assert cols["label"] == [[3.0, 2.0, 1.0]]
    with pytest.raises(TrainingDataError, match="num_negatives=3"):
        columns([Pair("q", "p", ("n1",))], num_negatives=3)
