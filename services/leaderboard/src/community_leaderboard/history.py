"""The leaderboard's own copy of the events it is built from.

`EVENTS` keeps eight days; the statistics cover every day since a student
joined. So that a rebuild can recompute them from the whole history, each
consumed source (`posts.>`, `goals.>`, `learning.>`) is copied by the NATS
server itself into a stream of its own, `LEADERBOARD_HISTORY_<SOURCE>`, kept
for `LEADERBOARD_HISTORY_MAX_AGE_DAYS` (0, the default: for good). The copy is
a JetStream source: the server copies each event once, as it is stored in
`EVENTS`, with its `Nats-Msg-Id`, and adds a `Nats-Stream-Source` header
naming the sequence it came from. NATS 2.9 takes one filter per sourced
stream, hence a stream per source.

A history stream created after events were published copies what `EVENTS`
still holds at that moment. Copying runs behind by a moment; the rebuild
replays a history stream and then `EVENTS` from after the last event copied
(`origin_sequence`).
"""

from __future__ import annotations

from community_shared.settings import Settings
from community_shared.streams import EVENTS_STREAM, ensure_stream
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy,
    RawStreamMsg,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    StreamSource,
)

from community_leaderboard.config import LeaderboardConfig
from community_leaderboard.events import CONSUMED_SUBJECTS

SOURCE_HEADER = "Nats-Stream-Source"


def history_stream_name(settings: Settings, subject: str) -> str:
    """`LEADERBOARD_HISTORY_POSTS` for `posts.>`, prefixed per deployment."""
    source = subject.split(".", 1)[0].upper()
    return settings.stream_name(f"LEADERBOARD_HISTORY_{source}")


def history_stream_config(
    settings: Settings, config: LeaderboardConfig, subject: str
) -> StreamConfig:
    return StreamConfig(
        name=history_stream_name(settings, subject),
        sources=[
            StreamSource(
                name=settings.stream_name(EVENTS_STREAM),
                filter_subject=settings.subject(subject),
            )
        ],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=config.history_max_age_days * 24 * 3600,
        discard=DiscardPolicy.OLD,
        num_replicas=settings.nats_stream_replicas,
    )


async def ensure_history_streams(
    js: JetStreamContext, settings: Settings, config: LeaderboardConfig
) -> None:
    """Create (or update) a history stream per consumed source; `EVENTS` must exist."""
    for subject in CONSUMED_SUBJECTS:
        await ensure_stream(js, history_stream_config(settings, config, subject))


def origin_sequence(msg: Msg | RawStreamMsg) -> int | None:
    """The `EVENTS` sequence a copied event came from, read off its
    `Nats-Stream-Source` header (`<stream> <sequence> ...`); None if absent."""
    value = (msg.headers or {}).get(SOURCE_HEADER)
    if not value:
        return None
    parts = value.split()
    if len(parts) < 2 or not parts[1].isdigit():
        return None
    return int(parts[1])
