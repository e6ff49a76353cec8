"""``e5search`` itself with the slowed fake encoder (tests/reliability/worker.py) in place of the model, so that an
``e5search index --store ...`` run lasts long enough to be killed or raced:

    E5SEARCH_TEST_DELAY=0.3 python -m tests.pg.slow_cli index FOLDER --store URL --quiet
"""

from __future__ import annotations

import os
import sys

from tests.reliability.worker import SlowEncoder


def use_slow_encoder(delay: float) -> None:
    """Every place that loads an index's encoder gets the slowed fake instead."""
    import indexer.build.job

    def slow(manifest, model=None):
        return SlowEncoder(delay)

    indexer.build.job.encoder_for_index = slow  # type: ignore[assignment]


if __name__ == "__main__":
    from e5search.cli import main

    use_slow_encoder(float(os.environ.get("E5SEARCH_TEST_DELAY", "0")))
    sys.exit(main(sys.argv[1:]))
