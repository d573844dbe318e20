"""How the server performs a connection's actions (see protocol.py and actions.py).

The one place where what `ConnectionProtocol` asks for meets JetStream (channel
history), Redis (read cursors), presence and the connection's outbound path;
each I/O step hands its result, or its failure, back to the protocol and
performs what that returns. Nothing here decides an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from community_gateway import metrics
from community_gateway.actions import (
    Action,
    Close,
    CountOp,
    GoLive,
    Listen,
    ModeChanged,
    OpenPresence,
    ReadHistory,
    ReadInbox,
    Schedule,
    Send,
    StoreCursor,
    StoreVisibility,
    Timer,
    Unlisten,
)
from community_gateway.channels import PRESENCE
from community_gateway.client import Client, Timers
from community_gateway.cursors import ReadCursors
from community_gateway.presence import PresenceService
from community_gateway.protocol import ConnectionProtocol, StoredEvent, control, cursor_to_store
from community_gateway.store import ChannelStore

log = logging.getLogger(__name__)

PRESENCE_SYNC_WAIT = 5.0
"""How long a `presence` subscription waits for a starting instance's first snapshot."""
GREETING_READS = 3
"""How many times a greeting counts the unread inbox events until no event came in
between the count and the inbox's latest seq (an inbox takes a few events an hour)."""


class ActionPerformer:
    """The server's part that performs actions (a base of `GatewayServer`)."""

    _store: ChannelStore | None
    _cursors: ReadCursors | None
    _presence: PresenceService | None

    def _index_add(self, channel: str, client: Client) -> None:
        raise NotImplementedError

    def _index_remove(self, channel: str, client: Client) -> None:
        raise NotImplementedError

    def _require_store(self) -> ChannelStore:
        if self._store is None:
            raise ConnectionError("JetStream is not set up")
        return self._store

    async def _perform(self, client: Client, timers: Timers, actions: list[Action]) -> None:
        """Carry out a connection's actions in order; once it is closing, the rest are moot."""
        protocol = client.protocol
        for action in actions:
            if client.closing:
                return
            match action:
                case Send(items, True):
                    for item in items:
                        if not await client.push_paced(item):
                            return
                case GoLive(channel):
                    await self._perform(client, timers, protocol.go_live(channel))
                case ReadInbox():
                    await self._perform(client, timers, await self._read_inbox(protocol, action))
                case ReadHistory():
                    actions_ = await self._read_history(protocol, action)
                    await self._perform(client, timers, actions_)
                case OpenPresence():
                    await self._open_presence(client, timers, action)
                case StoreCursor():
                    client.push(action.done if await self._store_cursor(action) else action.failed)
                case StoreVisibility():
                    stored = await self._store_visibility(action)
                    client.push(action.done if stored else action.failed)
                case _:
                    self._apply(client, timers, action)

    def _apply(self, client: Client, timers: Timers, action: Action) -> bool:
        """Perform an action that needs no waiting; False for any other."""
        match action:
            case Send(items, False):
                for item in items:
                    if not client.push(item):
                        break
            case CountOp(name, outcome):
                metrics.OPS.labels(name, outcome).inc()
            case Listen(channel):
                self._index_add(channel, client)
            case Unlisten(channel):
                self._index_remove(channel, client)
                if channel == PRESENCE and self._presence is not None:
                    self._presence.unwatch(client)
            case Schedule(timer, delay):
                timers.schedule(timer, delay)
            case Close(code, reason):
                client.close(code, reason)
            case ModeChanged(identity, foreground):
                if self._presence is not None:
                    self._presence.mode_changed(identity, foreground=foreground)
            case _:
                return False
        return True

    def _timer_due(self, client: Client, timers: Timers, timer: Timer) -> None:
        if not client.closing:
            self._perform_now(client, timers, client.protocol.timer_due(timer, time.time()))

    def _perform_now(self, client: Client, timers: Timers, actions: list[Action]) -> None:
        """Carry out actions that need no waiting (what a timer returns), within this call.

        Within the call matters: an inbox release's frames must be queued
        before the next live event of the channel is offered.
        """
        for action in actions:
            if client.closing:
                return
            if not self._apply(client, timers, action):
                raise TypeError(f"{action!r} cannot be performed without waiting")

    async def _read_inbox(self, protocol: ConnectionProtocol, action: ReadInbox) -> list[Action]:
        try:
            store = self._require_store()
            cursor = await self._cursors.get(action.user_id) if self._cursors else None
            latest = await store.latest_seq(action.channel)
            unread = 0
            if cursor is not None:
                for _ in range(GREETING_READS):
                    unread = await store.unread(action.user_id, cursor)
                    counted, latest = latest, await store.latest_seq(action.channel)
                    if latest == counted:
                        break  # nothing came in between: `unread` counts (cursor, latest]
        except Exception as exc:
            log.warning("cannot greet %s: %s", action.user_id, exc)
            return protocol.greet_failed()
        return protocol.greeted(latest, unread)

    async def _read_history(
        self, protocol: ConnectionProtocol, action: ReadHistory
    ) -> list[Action]:
        channel = action.channel
        try:
            store = self._require_store()
            latest = await store.latest_seq(channel)
            history: list[StoredEvent] = []
            recovered = False
            if action.since is not None:
                history, recovered = await store.history(channel, action.since, latest)
        except Exception as exc:
            log.warning("cannot read the history of %s: %s", channel, exc)
            return protocol.history_unavailable(action)
        return protocol.history_read(action, latest=latest, history=history, recovered=recovered)

    async def _open_presence(self, client: Client, timers: Timers, action: OpenPresence) -> None:
        presence = self._presence
        if presence is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(presence.synced.wait(), PRESENCE_SYNC_WAIT)
            await presence.catch_up()
        if presence is None or not presence.synced.is_set():
            await self._perform(client, timers, client.protocol.presence_unavailable(action))
            return
        await self._perform(client, timers, client.protocol.presence_opened(action))
        snapshot = presence.watch(
            client, lambda payload: client.push(control(payload)), lambda: client.session.identity
        )
        client.push(control(snapshot))

    async def _store_cursor(self, action: StoreCursor) -> bool:
        try:
            if self._cursors is None:
                raise ConnectionError("redis is not connected")
            latest = await self._require_store().latest_seq(action.channel)
            await self._cursors.advance(action.user_id, cursor_to_store(action.seq, latest))
        except Exception as exc:
            log.warning("cannot store the read cursor of %s: %s", action.user_id, exc)
            return False
        return True

    async def _store_visibility(self, action: StoreVisibility) -> bool:
        try:
            if self._presence is None:
                raise ConnectionError("presence is not running")
            await self._presence.set_visible(action.identity, action.visible)
        except Exception as exc:
            log.warning("cannot store the visibility of %s: %s", action.identity.user_id, exc)
            return False
        return True
