"""``e5search.toml``: defaults for ``index``, ``search`` and ``app`` kept in a file beside the index.

The file lives in the index folder (``<index>/e5search.toml``) or is named with ``--config FILE``. Each section is
named after a subcommand and its keys are that subcommand's flags, spelt as in Python (``chunk_size`` for
``--chunk-size``, dashes accepted too)::

    [index]
    backend = "onnx-int8"
    chunk_size = 192

    [search]
    mode = "bm25"
    k = 5

Precedence: a flag given on the command line wins over the file, the file wins over the built-in defaults.
Values pass the checks the flags pass: the flag's own type and choices (read from the argparse definition, so
there is one list of choices), then the config dataclass that the value ends up in (``ChunkConfig``,
``ModelConfig``, ``IndexConfig``, ``SearchConfig``). Any problem is one :class:`ConfigError` naming the file, the
key and the fix. Non-goals: per-invocation flags (``--index``, ``--json``, ``--queries``, ...) are not defaults
and are refused in the file.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from indexer.config import ChunkConfig, IndexConfig, ModelConfig, SearchConfig
from indexer.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

FILENAME = "e5search.toml"
SECTIONS = ("index", "search", "app")
# What a user gives per run, never as a default: where the index is, what to read or write, how to print.
PER_RUN = frozenset(
    {
        "help",
        "path",
        "query",
        "index",
        "store",
        "config",
        "queries",
        "run",
        "json",
        "quiet",
        "watch",
        "repair",
        "rechunk",
    }
)


def find_config(explicit: str | None, index: str | None) -> Path | None:
    """``--config FILE`` if given (it must exist), else ``<index>/e5search.toml`` if there is one."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"--config {explicit}: no such file; give the path of an {FILENAME}")
        return path
    if index and "://" not in index:
        path = Path(index).expanduser() / FILENAME
        return path if path.is_file() else None
    return None


def read_section(path: Path, section: str) -> dict[str, Any]:
    """The ``[section]`` table of the file (``{}`` when absent); other sections must be known ones."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{path}: not a readable TOML file ({exc}); fix the syntax or remove the file"
        ) from None
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise ConfigError(
            f"{path}: unknown section [{unknown[0]}]; use {', '.join(f'[{s}]' for s in SECTIONS)}"
        )
    table = data.get(section, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: '{section}' must be a table ([{section}]), not a single value")
    return {key.replace("-", "_"): value for key, value in table.items()}


def file_defaults(path: Path, section: str, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """The ``[section]`` values, checked against ``parser``'s flags and the config dataclasses.

    Returns ``{dest: value}`` ready for ``parser.set_defaults``, so flags given on the command line still win.
    """
    values = read_section(path, section)
    actions = {a.dest: a for a in parser._actions if a.option_strings and a.dest not in PER_RUN}
    for key, value in values.items():
        if key not in actions:
            raise ConfigError(
                f"{path}: [{section}] unknown key '{key}'; known: {', '.join(sorted(actions))} (fix or remove it)"
            )
        _check_value(path, section, key, value, actions[key])
    try:
        if section == "index":
            index_config(IndexConfig(), values)
        elif section == "search":
            _search_config(values)
    except ConfigError as exc:
        raise ConfigError(f"{path}: [{section}] {exc}") from None
    return values


def _check_value(path: Path, section: str, key: str, value: Any, action: argparse.Action) -> None:
    """The flag's own type and choices, as argparse would apply them to the text of the flag."""
    where = f"{path}: [{section}] {key} = {value!r}"
    if action.nargs == 0:  # store_true / store_false
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: must be true or false")
        return
    items = value if isinstance(action, argparse._AppendAction) else [value]
    if not isinstance(items, list):
        raise ConfigError(f'{where}: must be a list, e.g. {key} = ["..."]')
    for item in items:
        wanted = action.type if action.type in (int, float) else str
        ok = isinstance(item, wanted) or (wanted is float and isinstance(item, int))
        if isinstance(item, bool) or not ok:
            raise ConfigError(f"{where}: must be {'a number' if wanted is float else wanted.__name__}")  # type: ignore[union-attr]
        if action.choices is not None and item not in action.choices:
            raise ConfigError(f"{where}: must be one of {', '.join(map(str, action.choices))}")


def index_config(base: IndexConfig, given: Mapping[str, Any]) -> IndexConfig:
    """``base`` with the index flags' values laid over it (``None`` or absent = keep ``base``'s).

    The one mapping from the ``index`` flags to the :class:`IndexConfig` fields, used for flags and file alike.
    """

    def pick(key: str, current: Any) -> Any:
        value = given.get(key)
        return current if value is None else value

    model = ModelConfig(
        model=pick("model", base.model.model),
        device=pick("device", base.model.device),
        batch_size=pick("batch_size", base.model.batch_size),
        backend=pick("backend", base.model.backend),
        query_prompt=base.model.query_prompt,
        passage_prompt=base.model.passage_prompt,
    )
    chunking = ChunkConfig(
        chunk_size=pick("chunk_size", base.chunking.chunk_size),
        chunk_overlap=pick("chunk_overlap", base.chunking.chunk_overlap),
        max_title_tokens=base.chunking.max_title_tokens,
    )
    return dataclasses.replace(
        base,
        model=model,
        chunking=chunking,
        dense_kind=pick("dense", base.dense_kind),
        hnsw_ef_search=pick("hnsw_ef_search", base.hnsw_ef_search),
        max_file_mb=pick("max_file_mb", base.max_file_mb),
        follow_symlinks=bool(given.get("follow_symlinks")) or base.follow_symlinks,
        ocr=pick("ocr", base.ocr),
    )


def _search_config(given: Mapping[str, Any]) -> SearchConfig:
    """The :class:`SearchConfig` fields the ``search`` flags set, to check the file's values as the flags are."""
    fields = {"rrf_k": "rrf_k", "fusion": "fusion", "rerank_k": "rerank_top"}  # flag -> field
    return SearchConfig(**{field: given[flag] for flag, field in fields.items() if flag in given})
