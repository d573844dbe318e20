"""JetStream stream setup, idempotent at start-up.

`EVENTS` captures every domain event subject (`posts.>`, `goals.>`,
`resources.>`, `leaderboard.>`, `learning.>`) for eight days (SPEC §8 asks for
at least seven). Request/reply subjects live under `rpc.` and are never
captured. The duplicate window is long enough to cover a relay retrying after a
lost acknowledgement.
"""

from __future__ import annotations

import logging

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError

from community_shared.settings import Settings

log = logging.getLogger(__name__)

EVENT_SOURCES = ("posts", "goals", "resources", "leaderboard", "learning")
EVENTS_STREAM = "EVENTS"
EVENTS_MAX_AGE_SECONDS = 8 * 24 * 3600
DUPLICATE_WINDOW_SECONDS = 10 * 60


def events_stream_config(settings: Settings) -> StreamConfig:
    return StreamConfig(
        name=settings.stream_name(EVENTS_STREAM),
        subjects=[settings.subject(f"{source}.>") for source in EVENT_SOURCES],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=EVENTS_MAX_AGE_SECONDS,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        discard=DiscardPolicy.OLD,
        num_replicas=settings.nats_stream_replicas,
    )


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    """Create the stream, or update it to `config` if it exists."""
    try:
        await js.add_stream(config)
    except BadRequestError:
        await js.update_stream(config)


async def ensure_event_stream(js: JetStreamContext, settings: Settings) -> None:
    await ensure_stream(js, events_stream_config(settings))
