"""Leaderboard-specific configuration, read from the environment.

The common settings (database, NATS, Redis, prefixes) are `community_shared`'s
`Settings`; this adds the points weights and the consumer's tuning knobs. Every
variable is optional; the defaults are documented in docs/leaderboard.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from community_leaderboard.rules import DEFAULT_WEIGHTS, Weights

WEIGHT_ENV_PREFIX = "LEADERBOARD_WEIGHT_"


@dataclass(frozen=True)
class LeaderboardConfig:
    weights: Weights = field(default_factory=lambda: DEFAULT_WEIGHTS)
    batch_size: int = 1500
    """Most events applied in one transaction (a backlog fills them; a live
    event goes through alone)."""
    appliers: int = 5
    """Transactions applying events side by side (each on its own set of students)."""
    max_ack_pending: int = 10_000
    """Events the server may hand a consumer before it acknowledges any."""
    ack_wait_seconds: float = 30.0
    stats_interval_seconds: float = 1.0
    """`leaderboard.stats.updated` goes out at most once per this interval."""
    catch_up_stats_interval_seconds: float = 5.0
    """... and at most once per this interval while a backlog is worked through
    (the totals are a scan of every student)."""
    top_interval_seconds: float = 1.0
    """`leaderboard.top.changed` goes out at most once per this interval per board
    (and a board's first page is rendered at most that often)."""
    rollover_check_seconds: float = 30.0
    """How often the windows are checked for a new UTC day."""
    catch_up_threshold: int = 1000
    """A consumer with more events than this waiting is working through a backlog:
    it announces each student's net rank move once caught up."""
    catch_up_flush_seconds: float = 300.0
    """During a long backlog, kept rank moves are announced at least this often."""
    applied_events_retention_days: int = 10
    """Applied event ids kept for idempotency (longer than the stream keeps events)."""
    history_max_age_days: int = 0
    """How long the leaderboard's copy of its events is kept for a rebuild (0: for good)."""
    boards_check_seconds: float = 1.0
    """How often the boards are checked for having been lost by Redis (keeper.py)."""

    def __post_init__(self) -> None:
        if self.top_interval_seconds <= 0:
            raise ValueError("LEADERBOARD_TOP_INTERVAL_SECONDS must be positive")
        if self.history_max_age_days < 0:
            raise ValueError("LEADERBOARD_HISTORY_MAX_AGE_DAYS must not be negative")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LeaderboardConfig:
        env = os.environ if env is None else env
        weight_values: dict[str, int] = {}
        for f in fields(Weights):
            raw = env.get(f"{WEIGHT_ENV_PREFIX}{f.name.upper()}")
            if raw is not None and raw.strip() != "":
                weight_values[f.name] = int(raw)
        weights = Weights(**weight_values) if weight_values else DEFAULT_WEIGHTS
        return cls(
            weights=weights,
            batch_size=int(env.get("LEADERBOARD_BATCH_SIZE", cls.batch_size)),
            appliers=int(env.get("LEADERBOARD_APPLIERS", cls.appliers)),
            max_ack_pending=int(env.get("LEADERBOARD_MAX_ACK_PENDING", cls.max_ack_pending)),
            ack_wait_seconds=float(env.get("LEADERBOARD_ACK_WAIT_SECONDS", cls.ack_wait_seconds)),
            stats_interval_seconds=float(
                env.get("LEADERBOARD_STATS_INTERVAL_SECONDS", cls.stats_interval_seconds)
            ),
            catch_up_stats_interval_seconds=float(
                env.get(
                    "LEADERBOARD_CATCH_UP_STATS_INTERVAL_SECONDS",
                    cls.catch_up_stats_interval_seconds,
                )
            ),
            catch_up_threshold=int(
                env.get("LEADERBOARD_CATCH_UP_THRESHOLD", cls.catch_up_threshold)
            ),
            catch_up_flush_seconds=float(
                env.get("LEADERBOARD_CATCH_UP_FLUSH_SECONDS", cls.catch_up_flush_seconds)
            ),
            top_interval_seconds=float(
                env.get("LEADERBOARD_TOP_INTERVAL_SECONDS", cls.top_interval_seconds)
            ),
            rollover_check_seconds=float(
                env.get("LEADERBOARD_ROLLOVER_CHECK_SECONDS", cls.rollover_check_seconds)
            ),
            history_max_age_days=int(
                env.get("LEADERBOARD_HISTORY_MAX_AGE_DAYS", cls.history_max_age_days)
            ),
            boards_check_seconds=float(
                env.get("LEADERBOARD_BOARDS_CHECK_SECONDS", cls.boards_check_seconds)
            ),
        )
