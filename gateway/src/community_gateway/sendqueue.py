"""The bounded outbound path of one client: its queue and its stall clock. No I/O.

Frames wait here until the connection's writer sends them. While the queue
holds at most `bound` frames, and the client's whole outbound backlog (the
queued bytes plus `held`, what the transport and the kernel still hold for
it, measured by the caller) stays within `byte_bound`, nothing is ever
dropped. When a push (or a later check, `fits`) goes over a bound, the client
has fallen behind and the queue frees room in this order:

1. merge counter updates: every frame with a coalesce key (`post.liked`/`unliked`
   per post, `resource.stats` per resource, `top.changed` per board) that a
   newer frame with the same key supersedes is dropped — only the newest value
   of each key stays, in its place (SPEC §9: "only the latest ... are kept"),
   and until the client has caught up (the queue emptied) each new value
   replaces the queued one of its key at once;
2. shed live-ticker (`activity`) frames, oldest first, only as many as needed;
3. give up: the push reports overflow and the caller closes the connection
   (4008). The client reconnects and recovers with `since`.

Everything else — `reviews` and `user:` events, answers to ops, feed events —
is never dropped: the only way such a frame is lost is the connection closing.
The order of the frames that remain is the order they were pushed in.

Cost: push and pop are O(1) amortized; no scan of the queue ever happens.

`StallClock` decides when a client whose backlog stopped draining is given
up on (4008) even though no bound is reached: a client that reads nothing
would otherwise sit silent behind a full socket buffer until the ping timeout.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable
from typing import Final

MERGED: Final = "merged"
SHED: Final = "shed"


@dataclasses.dataclass(slots=True)
class Outgoing:
    """One frame ready to send (`payload` is the UTF-8 JSON text, encoded once).

    `wire` is the whole websocket frame, made by the first direct write
    (`wsadapter.Link.write_all`) and reused for every other client the same
    frame goes to: an event is framed once, not once per subscriber.
    """

    payload: bytes
    coalesce_key: str | None = None
    sheddable: bool = False
    wire: bytes | None = dataclasses.field(default=None, compare=False, repr=False)


@dataclasses.dataclass(slots=True, eq=False)
class _Entry:
    item: Outgoing
    alive: bool = True


class SendQueue:
    """A FIFO of frames with a soft bound (see the module docstring for the rules).

    `on_drop(reason)` is called once per dropped frame with `"merged"` or
    `"shed"` (for metrics). After an overflow the queue refuses every push;
    what it still holds can be popped but the caller is expected to close.
    """

    __slots__ = (
        "_behind",
        "_bytes",
        "_entries",
        "_latest",
        "_on_drop",
        "_sheddable",
        "_size",
        "_stale",
        "bound",
        "byte_bound",
        "overflowed",
    )

    def __init__(
        self,
        bound: int,
        on_drop: Callable[[str], None] | None = None,
        *,
        byte_bound: int | None = None,
    ) -> None:
        if bound < 1:
            raise ValueError("bound must be at least 1")
        if byte_bound is not None and byte_bound < 1:
            raise ValueError("byte_bound must be at least 1")
        self.bound = bound
        self.byte_bound = byte_bound
        self.overflowed = False
        self._on_drop = on_drop
        # The deques exist only while something is queued: an empty deque takes
        # ~0.6 KiB, and most connections keep up and queue nothing, ever.
        self._entries: deque[_Entry] | None = None
        self._size = 0
        self._bytes = 0
        # The newest live entry per coalesce key; an older live entry with the
        # same key is "stale" and is the first thing to go.
        self._latest: dict[str, _Entry] = {}
        self._stale: deque[_Entry] | None = None
        self._sheddable: deque[_Entry] | None = None
        self._behind = False  # went over a bound and has not emptied since

    def __len__(self) -> int:
        return self._size

    @property
    def bytes(self) -> int:
        """The size of the frames queued (payloads)."""
        return self._bytes

    def push(self, item: Outgoing, held: int = 0) -> bool:
        """Append `item`; False means overflow (nothing more will be accepted).

        `held` is what the client's transport and socket still hold beyond
        this queue (bytes); it counts against `byte_bound`.
        """
        if self.overflowed:
            return False
        entry = _Entry(item)
        key = item.coalesce_key
        if key is not None:
            previous = self._latest.get(key)
            if previous is not None and previous.alive:
                if self._behind:
                    self._kill(previous)
                    self._dropped(MERGED)
                else:
                    if self._stale is None:
                        self._stale = deque()
                    self._stale.append(previous)
            self._latest[key] = entry
        if item.sheddable:
            if self._sheddable is None:
                self._sheddable = deque()
            self._sheddable.append(entry)
        if self._entries is None:
            self._entries = deque()
        self._entries.append(entry)
        self._size += 1
        self._bytes += len(item.payload)
        if self._over(held):
            self._make_room(held)
        elif self._stale is not None and len(self._stale) > 2 * self._size + 16:
            self._stale = deque(e for e in self._stale if e.alive)
        if self._over(held):
            self.overflowed = True
            return False
        return True

    def fits(self, held: int) -> bool:
        """Re-check the bounds now that the transport and socket hold `held` bytes.

        Frees room as a push would; False means overflow (the caller closes).
        """
        if self.overflowed:
            return False
        if self._over(held):
            self._make_room(held)
            if self._over(held):
                self.overflowed = True
                return False
        return True

    def _over(self, held: int) -> bool:
        return self._size > self.bound or (
            self.byte_bound is not None and self._bytes + held > self.byte_bound
        )

    def pop(self) -> Outgoing | None:
        """The oldest frame still queued, or None when empty."""
        entries = self._entries
        while entries:
            entry = entries.popleft()
            if not entry.alive:
                continue
            self._kill(entry)
            if self._size == 0:
                self._behind = False
            if entry.item.sheddable:
                # Sheddable entries leave in queue order, so this is the leftmost.
                while self._sheddable and not self._sheddable[0].alive:
                    self._sheddable.popleft()
            return entry.item
        if entries is not None:  # emptied: every entry left is dead
            self._entries = self._stale = self._sheddable = None
            self._latest.clear()  # an emptied dict keeps its table; cleared, it frees it
        return None

    def clear(self) -> None:
        """Forget everything queued (the connection is gone)."""
        self._entries = self._stale = self._sheddable = None
        self._latest.clear()
        self._size = 0
        self._bytes = 0
        self._behind = False

    def _kill(self, entry: _Entry) -> None:
        entry.alive = False
        self._size -= 1
        self._bytes -= len(entry.item.payload)
        key = entry.item.coalesce_key
        if key is not None and self._latest.get(key) is entry:
            del self._latest[key]

    def _make_room(self, held: int) -> None:
        self._behind = True
        while self._stale:
            entry = self._stale.popleft()
            if entry.alive:
                self._kill(entry)
                self._dropped(MERGED)
        while self._over(held) and self._sheddable:
            entry = self._sheddable.popleft()
            if entry.alive:
                self._kill(entry)
                self._dropped(SHED)

    def _dropped(self, reason: str) -> None:
        if self._on_drop is not None:
            self._on_drop(reason)


class StallClock:
    """Whether a client's outbound backlog has stopped draining for too long.

    The caller observes, now and then, whether anything is pending for the
    client (queued, or held by its transport or socket) and a `mark` that
    grows whenever the client takes data (e.g. bytes handed to the socket
    minus bytes the socket still holds). Stalled means: pending without the
    mark growing for `timeout` seconds. It does not say why (a client that
    stopped reading, or a dead network path); either way it gets 4008.
    """

    __slots__ = ("_mark", "_since", "timeout")

    def __init__(self, timeout: float) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.timeout = timeout
        self._since: float | None = None
        self._mark = 0

    def observe(self, now: float, *, pending: bool, mark: int) -> bool:
        """Record one observation; True when the client counts as stalled."""
        progressed = mark > self._mark
        self._mark = mark
        if not pending or progressed or self._since is None:
            self._since = now if pending else None
            return False
        return now - self._since >= self.timeout
