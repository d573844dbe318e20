"""Channel histories in JetStream: the streams, the latest seq, history reads, unread counts.

Two streams hold every channel event the router published:

- `CHANNELS` (subjects `ch.>`: `ch.feed`, `ch.leaderboard`, `ch.activity`,
  `ch.resources`, `ch.reviews`), 48 hours and at most 10,000 events per channel;
- `INBOX` (subjects `inbox.<user id>`), the notification inboxes, 30 days and
  at most 1,000 events per user.

Their names, subjects and message format are `community_shared.channelstreams`
(the notifications service reads these streams too); their limits are the
gateway's configuration.

A message's stream sequence number is the event's `seq`: it is assigned once,
by the stream, so every gateway instance reports the same `seq` for the same
event, and it increases along each channel (with gaps, since the other
channels share the numbering).

This module only moves data; which of it a client may see is decided by
`protocol.Session`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import uuid

from community_shared.channelstreams import (
    CHANNELS_STREAM,
    INBOX_STREAM,
    INBOX_SUBJECT_PREFIX,
    SHARED_SUBJECT_PREFIX,
    channel_subject,
    channel_user_id,
    user_channel,
)
from community_shared.settings import Settings
from community_shared.streams import ensure_stream
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

from community_gateway.config import GatewayConfig
from community_gateway.protocol import StoredEvent, history_reaches_back

log = logging.getLogger(__name__)

DUPLICATE_WINDOW_SECONDS = 10 * 60
DIRECT_READS = 16
"""History shorter than this is read message by message; longer, through a consumer."""


@dataclasses.dataclass(eq=False)
class ChannelStore:
    """Reads and writes of channel histories for one gateway instance."""

    js: JetStreamContext
    settings: Settings
    config: GatewayConfig

    def __post_init__(self) -> None:
        self.channels_stream = self.settings.stream_name(CHANNELS_STREAM)
        self.inbox_stream = self.settings.stream_name(INBOX_STREAM)

    # -- set-up -------------------------------------------------------------

    def stream_configs(self) -> list[StreamConfig]:
        common = {
            "retention": RetentionPolicy.LIMITS,
            "storage": StorageType.FILE,
            "discard": DiscardPolicy.OLD,
            "duplicate_window": DUPLICATE_WINDOW_SECONDS,
            "num_replicas": self.settings.nats_stream_replicas,
        }
        return [
            StreamConfig(
                name=self.channels_stream,
                subjects=[self.settings.subject(f"{SHARED_SUBJECT_PREFIX}>")],
                max_age=self.config.channel_max_age_seconds,
                max_msgs_per_subject=self.config.channel_max_msgs,
                **common,  # type: ignore[arg-type]
            ),
            StreamConfig(
                name=self.inbox_stream,
                subjects=[self.settings.subject(f"{INBOX_SUBJECT_PREFIX}>")],
                max_age=self.config.inbox_max_age_seconds,
                max_msgs_per_subject=self.config.inbox_max_msgs,
                **common,  # type: ignore[arg-type]
            ),
        ]

    async def ensure_streams(self) -> None:
        """Create both streams, or bring their limits to the configured ones (idempotent)."""
        for config in self.stream_configs():
            await ensure_stream(self.js, config)

    # -- addressing -----------------------------------------------------------

    def locate(self, channel: str) -> tuple[str, str]:
        """(stream, wire subject) holding the history of a canonical channel name."""
        stream = self.inbox_stream if channel_user_id(channel) else self.channels_stream
        return stream, self.settings.subject(channel_subject(channel))

    def max_msgs_per_subject(self, channel: str) -> int:
        if channel_user_id(channel):
            return self.config.inbox_max_msgs
        return self.config.channel_max_msgs

    # -- reads ------------------------------------------------------------------

    async def latest_seq(self, channel: str) -> int:
        """The seq of the channel's newest retained event; 0 if it has none."""
        stream, subject = self.locate(channel)
        try:
            message = await self.js.get_last_msg(stream, subject)
        except NotFoundError:
            return 0
        return int(message.seq or 0)

    async def history(
        self, channel: str, since: int, latest: int
    ) -> tuple[list[StoredEvent], bool]:
        """The retained events with `since < seq <= latest`, in order, and `recovered`.

        `recovered` follows `protocol.history_reaches_back`. Guarantees: no
        event outside the range, none twice, ascending seq. Messages that
        disappear while being read (limits) are simply absent; then
        `recovered` may be optimistic only if they vanished after being
        judged retained, which needs the history to turn over completely
        during one read.
        """
        if since >= latest:
            return [], since == latest
        stream, subject = self.locate(channel)
        try:
            first = await self.js.get_msg(stream, seq=max(since, 1), subject=subject, next=True)
        except NotFoundError:
            return [], False
        first_seq = int(first.seq or 0)
        recovered = history_reaches_back(since=since, latest=latest, first_retained=first_seq)
        if not recovered:
            info = await self.js.stream_info(stream, subjects_filter=subject)
            recovered = history_reaches_back(
                since=since,
                latest=latest,
                first_retained=first_seq,
                stream_first_seq=info.state.first_seq,
                subject_count=(info.state.subjects or {}).get(subject, 0),
                max_msgs_per_subject=self.max_msgs_per_subject(channel),
            )
        events: list[StoredEvent] = []
        cursor = since + 1
        if first_seq > since:
            if first_seq > latest:
                return [], recovered
            self._append(events, channel, first_seq, first.data)
            cursor = first_seq + 1
        # Few events: direct reads; many: one ephemeral consumer.
        for _ in range(DIRECT_READS):
            if cursor > latest:
                return events, recovered
            try:
                message = await self.js.get_msg(stream, seq=cursor, subject=subject, next=True)
            except NotFoundError:
                return events, recovered
            seq = int(message.seq or 0)
            if seq > latest:
                return events, recovered
            self._append(events, channel, seq, message.data)
            cursor = seq + 1
        if cursor <= latest:
            await self._read_through_consumer(events, channel, stream, subject, cursor, latest)
        return events, recovered

    async def _read_through_consumer(
        self,
        events: list[StoredEvent],
        channel: str,
        stream: str,
        subject: str,
        start: int,
        latest: int,
    ) -> None:
        config = ConsumerConfig(
            name=f"gwh{uuid.uuid4().hex}",
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=start,
            filter_subject=subject,
            ack_policy=AckPolicy.NONE,
            mem_storage=True,
            inactive_threshold=30.0,
            num_replicas=1,
        )
        subscription = await self.js.pull_subscribe(subject, stream=stream, config=config)
        try:
            while True:
                batch = await subscription.fetch(batch=256, timeout=5)
                for message in batch:
                    metadata = message.metadata
                    seq = metadata.sequence.stream
                    if seq > latest:
                        return
                    self._append(events, channel, seq, message.data)
                    if seq == latest or metadata.num_pending == 0:
                        return
        finally:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
            with contextlib.suppress(Exception):
                await self.js.delete_consumer(stream, config.name or "")

    @staticmethod
    def _append(events: list[StoredEvent], channel: str, seq: int, payload: bytes | None) -> None:
        try:
            events.append(StoredEvent.decode(channel, seq, payload or b""))
        except ValueError:  # msgspec errors derive from ValueError
            log.warning("skipping undecodable message %s of %s", seq, channel)

    async def unread(self, user_id: uuid.UUID, cursor: int) -> int:
        """How many inbox events of `user_id` have a seq above `cursor`."""
        stream, subject = self.locate(user_channel(user_id))
        try:
            first = await self.js.get_msg(stream, seq=cursor + 1, subject=subject, next=True)
        except NotFoundError:
            return 0
        name = f"gwu{uuid.uuid4().hex}"
        info = await self.js.add_consumer(
            stream,
            ConsumerConfig(
                name=name,
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=int(first.seq or 0),
                filter_subject=subject,
                ack_policy=AckPolicy.NONE,
                mem_storage=True,
                inactive_threshold=5.0,
                num_replicas=1,
            ),
        )
        with contextlib.suppress(Exception):
            await self.js.delete_consumer(stream, name)
        return int(info.num_pending or 0)
