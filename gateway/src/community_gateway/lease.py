"""The router lease: which gateway instance routes events, decided through JetStream.

The lease is the last message on `gw.router.lease` in the stream `GATEWAY`
(file storage, one message per subject, age limit = the lease time). An
instance holds the lease while the last message there is its own and younger
than the lease time. Every write is a compare-and-set: it carries
`Nats-Expected-Last-Subject-Sequence` = the sequence of the previous lease
message as this instance saw it (0 for none), so of two instances racing for
a free lease exactly one wins, and a holder's renewal fails once anybody else
has written.

- The holder renews every `renew_every` (a fifth of the lease time).
- A standby tries the same write at the same pace: it fails while the
  holder's message lives and succeeds at the first try after the message
  ages out, i.e. within `ttl + renew_every` of the holder's last renewal.
- A write whose acknowledgement got lost (a timeout) may still have landed;
  when a later write fails its compare-and-set, the last message is read back
  and, if it is this instance's own, its sequence is adopted.
- The stream is file-backed, so the lease survives a NATS restart, and it is
  created again whenever an operation finds it missing (a server that lost its
  store, an operator who deleted it).
- A holder that could not renew for `ttl - renew_every` (NATS unreachable,
  this process stalled) stops routing on its own before any standby can take
  the lease: `fresh()` tells it when.
"""

from __future__ import annotations

import logging
import time

from community_shared.settings import Settings
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NoStreamResponseError, NotFoundError

from community_gateway import metrics

log = logging.getLogger(__name__)

LEASE_STREAM = "GATEWAY"
WRONG_LAST_SEQUENCE = 10071
STREAM_NOT_FOUND = 10059


class Lease:
    """One instance's view of the router lease. Raises on NATS failures; never blocks long."""

    def __init__(
        self, js: JetStreamContext, settings: Settings, ttl: float, instance_id: str
    ) -> None:
        self.js = js
        self.ttl = ttl
        self.instance_id = instance_id
        self.stream = settings.stream_name(LEASE_STREAM)
        self.replicas = settings.nats_stream_replicas
        self.stream_subjects = [settings.subject("gw.>")]
        self.subject = settings.subject("gw.router.lease")
        self.renew_every = max(0.05, ttl / 5)
        self.seq: int | None = None
        """Sequence of the lease message this instance last saw as its own."""
        self.renewed_at: float | None = None
        """Monotonic time at which the last successful write was sent."""

    def stream_config(self) -> StreamConfig:
        return StreamConfig(
            name=self.stream,
            subjects=self.stream_subjects,
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=self.ttl,
            max_msgs_per_subject=1,
            num_replicas=self.replicas,
        )

    async def ensure_stream(self) -> None:
        """Create the lease stream, or bring it to the configured limits (idempotent).

        A stream of another storage type (memory, as earlier versions made it)
        is replaced: the storage of a stream cannot be changed in place.
        """
        config = self.stream_config()
        try:
            await self.js.add_stream(config)
            return
        except BadRequestError:
            pass
        info = await self.js.stream_info(self.stream)
        if info.config.storage != config.storage:
            log.info("replacing the %s lease stream by a file-backed one", info.config.storage)
            await self.js.delete_stream(self.stream)
            await self.js.add_stream(config)
        else:
            await self.js.update_stream(config)

    def fresh(self, now: float) -> bool:
        """Whether this instance's last successful write is surely still the live lease."""
        return self.renewed_at is not None and now - self.renewed_at < self.ttl - self.renew_every

    async def try_hold(self) -> bool:
        """Acquire or renew the lease; True if this instance holds it now.

        Raises what NATS raises when it cannot answer (timeouts, no
        connection); the caller decides with `fresh()` what that means.
        """
        for _ in range(2):  # a second write after adopting a lost acknowledgement
            sent = time.monotonic()
            try:
                ack = await self.js.publish(
                    self.subject,
                    self.instance_id.encode(),
                    headers={"Nats-Expected-Last-Subject-Sequence": str(self.seq or 0)},
                    timeout=self.renew_every,
                )
            except NoStreamResponseError:
                log.warning("the router lease stream %s is missing; creating it", self.stream)
                metrics.RECREATED.labels("lease_stream").inc()
                await self.ensure_stream()
                self.seq = None  # a new stream has no lease message
                continue
            except BadRequestError as exc:
                if exc.err_code != WRONG_LAST_SEQUENCE:
                    raise
                own = await self._own_last_seq()
                if own is None or own == self.seq:
                    self.seq = None
                    self.renewed_at = None  # whatever we wrote before is not the lease
                    return False
                self.seq = own  # an earlier write of ours landed after all
                continue
            self.seq = ack.seq
            self.renewed_at = sent
            return True
        return False

    async def _own_last_seq(self) -> int | None:
        """The sequence of the live lease message if it is this instance's, else None."""
        try:
            message = await self.js.get_last_msg(self.stream, self.subject)
        except NotFoundError as exc:
            if exc.err_code == STREAM_NOT_FOUND:
                await self.ensure_stream()
            return None
        if message.data == self.instance_id.encode():
            return int(message.seq or 0)
        return None

    async def release(self) -> None:
        """Delete this instance's lease message so a standby takes over at its next try."""
        if self.seq is not None:
            await self.js.delete_msg(self.stream, self.seq)
        self.seq = None
        self.renewed_at = None
