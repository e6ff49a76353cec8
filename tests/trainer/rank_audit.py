"""Run ``e5search ARGS`` in one torchrun rank while recording what it changes under a folder.

Every file opened for writing, created, renamed or removed under WATCH by this rank is appended, one path
a line, to ``LOG_DIR/writes-rank{RANK}.txt`` (Python's audit hooks: ``open``, ``os.mkdir``, ``os.rename``,
``os.remove``, ``shutil.rmtree``...). Writes done inside native code (e.g. safetensors' Rust writer) are not
seen, but every model save also writes JSON files through ``open``, so a rank that saved would show.

Usage: ``torchrun ... tests/trainer/rank_audit.py WATCH LOG_DIR e5search-args...``
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
CHANGES = {"os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.truncate", "shutil.rmtree", "shutil.move"}


def _is_write(event: str, args: tuple) -> bool:
    if event == "open":
        mode, flags = args[1], args[2]
        if isinstance(mode, str):
            return any(c in mode for c in "wax+")
        return bool(isinstance(flags, int) and flags & WRITE_FLAGS)
    return event in CHANGES


def install(watch: Path, log: Path) -> None:
    watch_s = str(watch.resolve())

    def hook(event: str, args: tuple) -> None:
        if not args or not _is_write(event, args) or not isinstance(args[0], (str, bytes, os.PathLike)):
            return
        path = os.path.abspath(os.fsdecode(args[0]))
        if path == watch_s or path.startswith(watch_s + os.sep):
            with open(log, "a", encoding="utf-8") as f:  # outside watch: not recorded, no recursion
                f.write(f"{event} {path}\n")

    sys.addaudithook(hook)


def main(argv: list[str]) -> int:
    watch, log_dir, rest = Path(argv[0]), Path(argv[1]), argv[2:]
    install(watch, log_dir / f"writes-rank{os.environ.get('RANK', '0')}.txt")
    from e5search.cli import main as e5search

    return e5search(rest)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
