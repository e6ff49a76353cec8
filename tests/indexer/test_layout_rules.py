"""The layout of ``indexer/`` as rules that fail when broken: imports point down the floors, no circle, short
modules, and a light ``e5search --help`` (neither faiss nor torch imported).

Floors, bottom up (a module may import its own floor's modules and any floor below; function-level imports
count too, since hiding an upward import inside a function is how a circle went unnoticed before):
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INDEXER = ROOT / "indexer"
FLOORS = {  # room (or ground-floor module) -> floor
    "indexer": 0,
    "types": 0,
    "errors": 0,
    "cache": 0,
    "tokens": 0,
    "config": 1,
    "configfile": 1,
    "storage": 2,
    "ingest": 3,
    "models": 3,
    "encoding": 4,
    "retrieval": 4,
    "build": 5,
    "search": 5,
}
MAX_LINES = 350


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "indexer"


def _runtime_nodes(tree: ast.AST):
    """Every node except those under ``if TYPE_CHECKING:`` (annotations only: no import at run time)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            continue
        yield node
        yield from _runtime_nodes(node)


def _imports() -> dict[str, set[str]]:
    """module -> the indexer modules it imports at run time anywhere in its body. The package's own
    ``__init__`` is the lazy public facade (names resolved on first use), so it is left out."""
    modules = {_module_name(p): p for p in INDEXER.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        if name == "indexer":
            continue
        found = set()
        for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            found |= {t for t in targets if t in modules and t != name}
        graph[name] = found
    return graph


def test_every_room_has_a_floor():
    rooms = {_room(m) for m in _imports()} | {"indexer"}
    assert rooms <= set(FLOORS), f"rooms without a floor: {sorted(rooms - set(FLOORS))}"


def test_imports_point_down_only():
    upward = [
        f"{m} -> {t}"
        for m, targets in _imports().items()
        for t in targets
        if FLOORS[_room(t)] > FLOORS[_room(m)]
    ]
    assert not upward, "imports pointing up a floor: " + ", ".join(upward)


def test_no_circle():
    graph = _imports()
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> list[str] | None:
        state[m] = 1
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                return path + [m, t]
            if t not in state and (cycle := visit(t, path + [m])):
                return cycle
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            cycle = visit(m, [])
            assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_modules_stay_short():
    long = {
        p.relative_to(ROOT).as_posix(): n
        for p in INDEXER.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_rule_catches_an_upward_import(tmp_path: Path, monkeypatch):
    """The check itself can fail: an ingest module importing the search facade is reported."""
    fake = INDEXER / "ingest" / "_layout_probe.py"
    fake.write_text("from indexer.search.index import Index\n", encoding="utf-8")
    try:
        with pytest.raises(AssertionError, match="indexer.ingest._layout_probe -> indexer.search.index"):
            test_imports_point_down_only()
    finally:
        fake.unlink()


def test_cli_help_imports_neither_faiss_nor_torch():
    code = (
        "import sys, e5search.cli as c\n"
        "try:\n    c.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('faiss', 'torch', 'streamlit') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_public_api_is_lazy():
    code = (
        "import sys, indexer\n"
        "assert 'faiss' not in sys.modules and 'torch' not in sys.modules\n"
        "from indexer import Index, build_index, Encoder, Filters, TextEncoder, Hit, SearchResult\n"
        "print('ok', all(callable(x) for x in (Index, build_index, Encoder)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok True"
