"""Rate-limit a stream of counter updates per key, never losing the last one. No I/O.

Used by the router for `resource.stats`: a burst of downloads of one resource
becomes at most one channel event per interval per resource. The first update
after a quiet interval goes out at once (no added latency); updates inside the
interval are held, each replacing the previous one, and the newest goes out
when the interval ends. Every offered update is handed back exactly once —
either as emitted or as *absorbed* into a later emission — so the caller can
acknowledge its source message at the right time.
"""

from __future__ import annotations

import dataclasses
from typing import Generic, TypeVar

T = TypeVar("T")
H = TypeVar("H")


@dataclasses.dataclass(slots=True)
class _Slot(Generic[T, H]):
    # When the next emission is allowed (last emission + interval). Stored, not
    # recomputed, so that `next_due()` and `due()` agree to the last bit.
    next_allowed: float
    held: T | None = None
    handles: list[H] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True, slots=True)
class Flush(Generic[T, H]):
    """The newest held update of a key, and the handles of every update it stands for."""

    key: str
    item: T
    handles: list[H]


class Coalescer(Generic[T, H]):
    """At most one emission per `interval` seconds per key; the latest value always emitted.

    Guarantees: for each key, emissions are at least `interval` apart (as
    measured by the `now` values passed in); the last update offered for a
    key is emitted no later than `interval` after the previous emission, once
    `due` is called at or after `next_due()`; every handle is returned exactly
    once. Does not order emissions of different keys.
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._slots: dict[str, _Slot[T, H]] = {}

    def offer(self, key: str, item: T, handle: H, now: float) -> bool:
        """True: emit `item` now (and acknowledge `handle`); False: held until `due`."""
        slot = self._slots.get(key)
        if slot is None or (slot.held is None and now >= slot.next_allowed):
            self._slots[key] = _Slot(next_allowed=now + self.interval)
            return True
        slot.held = item
        slot.handles.append(handle)
        return False

    def next_due(self) -> float | None:
        """When the earliest held update becomes due (None if nothing is held)."""
        times = [s.next_allowed for s in self._slots.values() if s.held is not None]
        return min(times) if times else None

    def due(self, now: float) -> list[Flush[T, H]]:
        """Take the held updates whose interval has ended; they count as emitted at `now`."""
        flushes: list[Flush[T, H]] = []
        for key in list(self._slots):
            slot = self._slots[key]
            if now < slot.next_allowed:
                continue
            if slot.held is None:
                del self._slots[key]
                continue
            flushes.append(Flush(key, slot.held, slot.handles))
            self._slots[key] = _Slot(next_allowed=now + self.interval)
        return flushes

    def drain(self) -> list[Flush[T, H]]:
        """Everything held, regardless of time (shutdown)."""
        flushes = [
            Flush(key, slot.held, slot.handles)
            for key, slot in self._slots.items()
            if slot.held is not None
        ]
        self._slots.clear()
        return flushes

    def __len__(self) -> int:
        return sum(1 for s in self._slots.values() if s.held is not None)
