"""Per-client query rate limit: a token bucket per client id.

A vendor-side privacy option (``--rate-limit``): an auditor (or attacker) that needs many
queries per user is slowed down. The client id comes from the request topic, which the
broker's ACL ties to the authenticated user (see :mod:`device_sim.acl`).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

_UNITS = {"s": 1.0, "min": 60.0, "h": 3600.0}
_SPEC = re.compile(r"^(?P<n>\d+(\.\d+)?)/(?P<unit>s|min|h)(:(?P<burst>\d+))?$")


class RateLimiter:
    """Token buckets keyed by client id.

    Parameters
    ----------
    rate_per_s : tokens added per second (sustained queries per second).
    burst : bucket size (queries a fresh client may send at once).
    clock : monotonic clock in seconds (injectable for tests).
    """

    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic):
        if rate_per_s <= 0 or burst < 1:
            raise ValueError(f"rate must be > 0 and burst >= 1, got {rate_per_s} and {burst}")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, last time)
        self._lock = threading.Lock()

    def allow(self, client_id: str) -> bool:
        """Take one token for ``client_id``; False when its bucket is empty."""
        with self._lock:
            now = self.clock()
            tokens, last = self._buckets.get(client_id, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate_per_s)
            allowed = tokens >= 1.0
            self._buckets[client_id] = (tokens - 1.0 if allowed else tokens, now)
            return allowed

    def retry_after_s(self, client_id: str) -> float:
        """Seconds until ``client_id`` has a token again."""
        with self._lock:
            tokens, _ = self._buckets.get(client_id, (float(self.burst), 0.0))
        return max(0.0, (1.0 - tokens) / self.rate_per_s)


def parse_rate_limit(spec: str, clock: Callable[[], float] = time.monotonic) -> RateLimiter:
    """Parse ``N/s``, ``N/min`` or ``N/h`` with an optional ``:BURST`` (default ``max(1, N)``)."""
    m = _SPEC.match(spec.strip())
    if m is None:
        raise ValueError(f"rate limit {spec!r} must look like 10/min, 2/s or 100/h:20")
    n = float(m["n"])
    burst = int(m["burst"]) if m["burst"] else max(1, int(n))
    return RateLimiter(n / _UNITS[m["unit"]], burst, clock)
