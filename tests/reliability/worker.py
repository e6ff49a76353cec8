"""A writer process for the reliability tests: index a folder with a slow fake encoder (like a real model, it
leaves time to be killed mid-run, or to be raced by another writer).

    python -m tests.reliability.worker FOLDER INDEX [--wait] [--delay SECONDS]

Exit codes as the CLI's: 0 done, 2 refused (the message on stderr, one line), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
import time

from indexer.build.job import build_index
from indexer.errors import E5SearchError
from tests.fakes import FakeEncoder


class SlowEncoder(FakeEncoder):
    def __init__(self, delay: float):
        super().__init__()
        self.delay = delay

    def encode_passages(self, texts, show_progress=False):
        time.sleep(self.delay * len(texts))
        return super().encode_passages(texts, show_progress)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("index")
    parser.add_argument("--wait", action="store_true")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds per chunk encoded")
    args = parser.parse_args()
    try:
        summary = build_index(args.folder, args.index, encoder=SlowEncoder(args.delay), wait=args.wait)
    except E5SearchError as exc:
        print(f"e5search: error: {exc}", file=sys.stderr)
        return 2
    print(summary.chunks, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
