"""Garbage-collector settings for the long-running processes (services and gateway).

CPython's cyclic collector runs its youngest generation every 700 net
allocations of container objects and, every hundred of those, considers a
full collection. A service under load keeps thousands of objects alive for a
few milliseconds each (messages waiting for a batch, decoded events, rows of a
transaction): at 700 they outlive two collections, are promoted to the oldest
generation, and soon trigger full collections that walk every object the
process holds. Measured on the leaderboard's ingest of a 1,000,000-event
backlog, collections took 37% of the service's CPU time, the full ones 180 to 200 ms
each (docs/benchmarks.md, "Leaderboard").

With the youngest generation collected every 50,000 allocations, almost all
such objects are gone by reference counting before any collection sees them;
the same ingest spends about 5% of its CPU in the collector and no time in
full collections. The price is at most a few megabytes of cyclic garbage
waiting a little longer to be freed.

`freeze_startup` moves what start-up built (modules, classes, the app, its
routes) out of the collector's sight for good, so that later full collections
walk only what the running process created.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000
"""Net container allocations between two collections of the youngest generation."""
MIDDLE_THRESHOLD = 20
"""Young collections between two of the middle generation."""
OLD_THRESHOLD = 10
"""Middle collections before a full one is considered (CPython's default)."""


def tune_collector() -> None:
    """Collect the young generations less often (see the module's docstring)."""
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)


def freeze_startup() -> None:
    """Collect once, then keep everything alive now out of every later collection."""
    gc.collect()
    gc.freeze()
