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
