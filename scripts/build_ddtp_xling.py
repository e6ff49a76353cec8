#!/usr/bin/env python
"""Build the DDTP cross-lingual retrieval datasets (BEIR layout) for every language with >= 1k translations.

Queries are package short descriptions in language X, the corpus is the English long descriptions (and the
reverse direction); qrels by package. Sampling is seeded; see ``eval/ddtp.py`` for the exact filters and choices.

    python scripts/build_ddtp_xling.py --out ~/.cache/e5search/ddtp-xling            # 1,000 queries, 2,000 docs
    python scripts/build_ddtp_xling.py --out /tmp/ddtp --languages de,ja --queries 200 --docs 500

The output goes to a cache folder, not the repository. ``e5search eval --suite multilingual`` builds it itself.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval.ddtp import MIN_TRANSLATIONS, N_DOCS, N_QUERIES, build_all  # noqa: E402

DEFAULT_SOURCE = Path(__file__).resolve().parents[2] / "shared" / "data" / "debian-ddtp"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="folder of descriptions.*.jsonl.gz")
    p.add_argument("--out", type=Path, required=True, help="output folder (one BEIR folder per direction)")
    p.add_argument("--languages", help="comma-separated codes (default: all with >= --min-translations)")
    p.add_argument("--queries", type=int, default=N_QUERIES, help="queries per dataset (default %(default)s)")
    p.add_argument("--docs", type=int, default=N_DOCS, help="documents per corpus (default %(default)s)")
    p.add_argument("--min-translations", type=int, default=MIN_TRANSLATIONS)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    languages = [x.strip() for x in args.languages.split(",")] if args.languages else None
    paths = build_all(
        args.source, args.out, languages, args.queries, args.docs, args.seed, args.min_translations
    )
    for name, path in sorted(paths.items()):
        print(f"{name}\t{path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
