"""``e5search`` itself, with the deterministic fake encoder standing in for the model: for the serve tests,
whose indexes are built with the fake (the real CLI would look for a model named "fake-hash-encoder").

    python -m tests.serve.fake_cli index FOLDER --index DIR --json
    python -m tests.serve.fake_cli search QUERY --index DIR --json
"""

from __future__ import annotations

import sys

from tests.fakes import FakeEncoder


def use_fake_encoder() -> None:
    """Every place that loads an index's encoder gets the fake instead."""
    import indexer.build.job
    import indexer.encoding.encoder
    import indexer.search.index

    def fake(manifest, model=None):
        return FakeEncoder()

    for module in (indexer.encoding.encoder, indexer.build.job, indexer.search.index):
        if hasattr(module, "encoder_for_index"):
            module.encoder_for_index = fake  # type: ignore[attr-defined]


if __name__ == "__main__":
    from e5search.cli import main

    use_fake_encoder()
    sys.exit(main(sys.argv[1:]))
