"""A fake encoder that takes its time (``delay`` seconds a text), so a worker can be killed while it encodes."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from tests.fakes import FakeEncoder


class SlowFakeEncoder(FakeEncoder):
    def __init__(self, delay: float = 0.02, **kwargs):
        super().__init__(**kwargs)
        self.delay = delay

    def encode_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        time.sleep(self.delay * len(texts))
        return super().encode_passages(texts, show_progress)
