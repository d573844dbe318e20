"""When a stopping instance closes each of its clients (SPEC §9: no reconnect storm).

A gateway that stops sends its clients 1012 so that they reconnect to another
instance and recover with `since`. Closing every client at once would send
them all to the other instances in the same instant: a rolling restart of a
busy instance would become a storm of handshakes and recoveries. The closes
are spread evenly over the drain window (`GATEWAY_DRAIN_SECONDS`), so the
other instances see at most `count / window` reconnections per second.

A small population does not need the whole window: closes never go slower
than `min_rate` per second (`GATEWAY_DRAIN_MIN_RATE`), a pace any instance
absorbs, so an instance with a handful of clients stops at once.
"""

from __future__ import annotations


def close_offsets(count: int, window: float, min_rate: float) -> list[float]:
    """Seconds after the stop began at which the i-th client is closed (ascending).

    The first client is closed at once; the last no later than `window`.
    """
    if count <= 0:
        return []
    if window <= 0:
        return [0.0] * count
    interval = window / count
    if min_rate > 0:
        interval = min(interval, 1.0 / min_rate)
    return [i * interval for i in range(count)]
