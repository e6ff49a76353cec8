"""Which reranker the product uses by default, and the shipped delta's offline rebuild (when one ships)."""

from __future__ import annotations

import numpy as np
import pytest

import indexer.models.default_reranker as dr
from indexer.errors import E5SearchError
from indexer.retrieval.rerank import default_reranker


@pytest.mark.parametrize(
    "env, shipped, expected",
    [
        (None, False, None),
        (None, True, dr.DEFAULT_RERANKER),
        ("none", True, None),
        (" OFF ", True, None),
        ("/models/my-ce", True, "/models/my-ce"),
        ("/models/my-ce", False, "/models/my-ce"),
    ],
)
def test_default_reranker_choice(monkeypatch, env, shipped, expected):
    monkeypatch.setattr(dr, "is_shipped", lambda asset_dir=dr.ASSET_DIR: shipped)
    if env is None:
        monkeypatch.delenv("E5SEARCH_RERANKER", raising=False)
    else:
        monkeypatch.setenv("E5SEARCH_RERANKER", env)
    assert default_reranker() == expected


def test_apply_delta_folds_lora_and_replaces_whole_tensors():
    state = {"w": np.eye(2), "head": np.zeros(3), "other": np.ones(1)}
    delta = {"w.lora_A": np.array([[1.0, 2.0]]), "w.lora_B": np.array([[1.0], [0.0]]), "head": np.arange(3.0)}
    out = dr.apply_delta(state, delta, scale=2.0)
    assert out["w"].tolist() == [[3.0, 4.0], [0.0, 1.0]]  # I + 2 · B @ A
    assert out["head"].tolist() == [0.0, 1.0, 2.0] and out["other"] is state["other"]
    assert state["w"].tolist() == [[1.0, 0.0], [0.0, 1.0]]  # the caller's dict is left alone
    with pytest.raises(E5SearchError, match="does not fit"):
        dr.apply_delta(state, {"missing": np.zeros(1)}, 1.0)
