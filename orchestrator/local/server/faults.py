"""Request counting and fault injection for the local workspace (tests and benchmarks only).

Faults are decided before a request is handled, so an injected error never has a side effect
and a client's retry is always safe: that is what the service's own 429/503 answers promise.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

__all__ = ["FaultDecision", "FaultSettings", "Faults"]

FaultKind = Literal["none", "429", "429-retry-after", "503", "drop", "rate-limit"]


@dataclass(frozen=True)
class FaultSettings:
    """What to inject. Probabilities are per API request, in [0, 1]."""

    latency_ms: float = 0.0
    p429: float = 0.0
    p429_retry_after: float = 0.0
    p503: float = 0.0
    p_drop: float = 0.0
    retry_after_seconds: int = 1
    # "POST workspace/delete" (method and path after /api/<version>/) -> requests per second
    rate_limits: dict[str, float] = field(default_factory=dict)
    seed: int | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultSettings:
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(unknown)}")
        settings = replace(cls(), **data)
        for name in ("p429", "p429_retry_after", "p503", "p_drop"):
            value = getattr(settings, name)
            if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability between 0 and 1, got {value!r}")
        if settings.latency_ms < 0 or settings.retry_after_seconds < 0:
            raise ValueError("latency_ms and retry_after_seconds must not be negative")
        for key, rate in settings.rate_limits.items():
            if not isinstance(rate, int | float) or rate <= 0:
                raise ValueError(f"rate limit for {key!r} must be a positive number")
        return settings

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FaultDecision:
    kind: FaultKind
    retry_after: int | None = None


class _Bucket:
    """A token bucket holding at most ``max(1, rate)`` tokens."""

    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.stamp = now

    def take(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Faults:
    """Thread-safe counters and fault decisions, changeable while the server runs."""

    def __init__(self, settings: FaultSettings | None = None) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._injected: Counter[str] = Counter()
        self._buckets: dict[str, _Bucket] = {}
        self._settings = FaultSettings()
        self._random = random.Random()
        self.configure(settings or FaultSettings())

    @property
    def settings(self) -> FaultSettings:
        return self._settings

    def configure(self, settings: FaultSettings) -> None:
        with self._lock:
            self._settings = settings
            self._random = random.Random(settings.seed)
            self._buckets.clear()

    def count(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": dict(sorted(self._counts.items())),
                "total": sum(self._counts.values()),
                "injected": dict(sorted(self._injected.items())),
            }

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()
            self._injected.clear()

    def decide(self, endpoint: str) -> FaultDecision:
        """Pick the fault (or none) for one API request to ``endpoint`` ("POST jobs/run-now")."""
        with self._lock:
            s = self._settings
            rate = s.rate_limits.get(endpoint)
            if rate is not None:
                now = time.monotonic()
                bucket = self._buckets.get(endpoint)
                if bucket is None:
                    bucket = self._buckets[endpoint] = _Bucket(rate, now)
                if not bucket.take(now):
                    self._injected["rate-limit"] += 1
                    return FaultDecision("rate-limit", retry_after=1)
            roll = self._random.random()
            for kind, p in (
                ("429", s.p429),
                ("429-retry-after", s.p429_retry_after),
                ("503", s.p503),
                ("drop", s.p_drop),
            ):
                if roll < p:
                    self._injected[kind] += 1
                    retry = s.retry_after_seconds if kind == "429-retry-after" else None
                    return FaultDecision(kind, retry_after=retry)  # type: ignore[arg-type]
                roll -= p
            return FaultDecision("none")
