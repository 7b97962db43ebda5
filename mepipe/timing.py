"""Optional per-stage timing of the preprocessing chain (used by ``mepipe bench pipeline``).

The runner, the aligner and the cache writer take an optional ``timer`` and wrap each stage in
``timer.stage(label)``; without one (the default) they use :data:`NO_TIMER`, which costs a context
manager and nothing else. Times are exclusive: a timed stage inside another (MediaPipe inside the
alignment, the HDF5 commit inside adding a sample) counts under its own label only.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from contextlib import contextmanager, nullcontext


class StageTimer:
    """Exclusive wall time and call count per stage label."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: Counter = Counter()
        self._stack: list[float] = []

    @contextmanager
    def stage(self, label: str):
        self._stack.append(0.0)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            el = time.perf_counter() - t0
            inner = self._stack.pop()
            self.seconds[label] += el - inner
            self.calls[label] += 1
            if self._stack:
                self._stack[-1] += el


class _NoTimer:
    """A timer that measures nothing."""

    def stage(self, label: str):
        return nullcontext()


NO_TIMER = _NoTimer()
