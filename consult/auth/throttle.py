"""Throttling of failed authentication per client address (the real client behind a trusted
proxy): guessing tokens gets a 429, not endless tries. Only failures count and a valid token is
checked before the throttle (``consult.http.principal.sign_in``), so staff are never slowed down."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

MAX_SOURCES = 10_000


class FailureThrottle:
    def __init__(self, limit: int, window_seconds: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window_seconds
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, source: str) -> deque[float]:
        now = self.clock()
        seen = self._failures.get(source)
        if seen is None:
            return deque()
        while seen and now - seen[0] > self.window:
            seen.popleft()
        return seen

    def blocked(self, source: str) -> bool:
        """True while ``source`` has used up its failures in the window."""
        return len(self._recent(source)) >= self.limit

    def failed(self, source: str) -> None:
        seen = self._recent(source)
        seen.append(self.clock())
        self._failures[source] = seen
        self._failures.move_to_end(source)
        if len(self._failures) > MAX_SOURCES:
            self._failures.popitem(last=False)
