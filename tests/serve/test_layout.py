"""serve/ sits above the library: it imports ``indexer`` and ``e5search.records``, nothing below imports it, and
its modules stay short (the house rule the indexer's layout test enforces for ``indexer/``)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 350


def _imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
    return names


def test_nothing_below_imports_serve():
    below = [p for d in ("indexer", "eval", "app", "trainer") for p in (ROOT / d).rglob("*.py")]
    below += [ROOT / "e5search" / "records.py"]
    assert below and not [p.relative_to(ROOT).as_posix() for p in below if "serve" in _imported(p)]


def test_serve_imports_only_the_library_and_its_own():
    ours = {"serve", "indexer", "e5search", "fastapi", "starlette", "pydantic", "uvicorn", "numpy"}
    for path in (ROOT / "serve").glob("*.py"):
        foreign = {m for m in _imported(path) if m not in ours and not _stdlib(m)}
        assert not foreign, (path.name, foreign)
        assert "app" not in _imported(path) and "eval" not in _imported(path)


def test_serve_modules_stay_short():
    long = {
        p.name: n for p in (ROOT / "serve").glob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def _stdlib(module: str) -> bool:
    import sys

    return module in sys.stdlib_module_names or module == "__future__"
