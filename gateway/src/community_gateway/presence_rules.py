"""Presence (SPEC §11) as plain code: who is online, what a frame says, who sees names. No I/O.

- `is_online` is the rule the Redis scripts of `presence_store` apply
  atomically: a visible user with an open connection on a live instance, or
  whose last connection closed less than the grace ago.
- `may_see_names`: lists of people (`members`, `joined`, `left`) go to
  signed-in members only; guests and non-members get the counts.
- `PresenceView` is one instance's copy of the visible online users, kept
  current from the change stream, with a log of its changes so that a
  subscriber that last saw version `v` gets exactly the *net* change since
  `v` (someone who joined and left in between appears in neither list).
- `PresenceBoard` decides which subscriber gets which frame and when: a
  snapshot on subscribe, then at most one frame per interval, and only when
  something the subscriber can see changed. Frames are built once per group
  of subscribers that saw the same version (in practice two per tick: with
  and without names), never once per join or per subscriber.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, Generic, TypeVar

import msgspec
from community_shared.auth import Identity

PRESENCE_CHANNEL = "presence"
DEFAULT_INTERVAL_SECONDS = 2.0
DEFAULT_MAX_MEMBERS = 1000

K = TypeVar("K", bound=Hashable)

_encoder = msgspec.json.Encoder()


@dataclasses.dataclass(frozen=True, slots=True)
class Member:
    """A visible online user as others see them."""

    user_id: str
    name: str
    role: str

    def as_json(self) -> dict[str, str]:
        return {"user_id": self.user_id, "name": self.name, "role": self.role}

    def encode(self) -> bytes:
        """The profile as stored beside the user in Redis (and carried by the change stream)."""
        return _encoder.encode(self.as_json())

    @classmethod
    def decode(cls, user_id: str, raw: bytes | str) -> Member:
        """A stored profile; a damaged one still yields the user (with a blank name)."""
        try:
            value = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            value = {}
        if not isinstance(value, dict):
            value = {}
        return cls(user_id, str(value.get("name", "")), str(value.get("role", "student")))

    @classmethod
    def of(cls, identity: Identity) -> Member:
        assert identity.user_id is not None, "guests are counted, never listed"
        return cls(str(identity.user_id), identity.name, identity.role)


def is_online(
    *, open_connections: int, leave_deadline: float | None, hidden: bool, now: float
) -> bool:
    """Whether a signed-in user counts as online (and is listed) at `now`.

    `open_connections` counts the user's connections on live instances (a
    crashed instance's connections stop counting when its heartbeat expires);
    `leave_deadline` is when the grace that started as the last one closed
    runs out (None if none is running). A hidden user is offline whatever
    their connections.
    """
    if hidden:
        return False
    if open_connections > 0:
        return True
    return leave_deadline is not None and now < leave_deadline


def may_see_names(identity: Identity) -> bool:
    """Lists of people are for signed-in members; everyone else sees counts."""
    return identity.user_id is not None and identity.is_member


# --------------------------------------------------------------------------- the view


def net_changes(changes: Iterable[tuple[bool, Member]]) -> tuple[list[Member], list[Member]]:
    """(joined, left) between the state before `changes` and after them, in first-seen order.

    `changes` are (became visible?, the user's profile), in order. A user is
    joined when absent before and present after, left when present before and
    absent after; whatever happened in between cancels out. "Before" is read
    from the user's first change (a join means they were absent), "after"
    from the last one; a user's changes must alternate (`PresenceView`
    guarantees it).
    """
    ends: dict[str, tuple[bool, bool, Member]] = {}
    for came, member in changes:
        seen = ends.get(member.user_id)
        was_present = not came if seen is None else seen[0]
        ends[member.user_id] = (was_present, came, member)
    joined: list[Member] = []
    left: list[Member] = []
    for was_present, is_present, member in ends.values():
        if is_present and not was_present:
            joined.append(member)
        elif was_present and not is_present:
            left.append(member)
    return joined, left


class PresenceView:
    """The visible online users as one instance knows them, versioned.

    `apply` records real changes only (a join of someone present or a leave
    of someone absent is ignored), so each user's log alternates join and
    leave and `changes_since` can net it out. The log keeps what the oldest
    subscriber still needs; `trim` drops the rest.
    """

    def __init__(self) -> None:
        self.members: dict[str, Member] = {}
        self.version = 0
        self._log: deque[tuple[int, bool, Member]] = deque()

    def __len__(self) -> int:
        return len(self.members)

    def apply(self, user_id: str, member: Member | None) -> bool:
        """A user became visible online (`member`) or stopped being (None); True if it changed."""
        if member is None:
            gone = self.members.pop(user_id, None)
            if gone is None:
                return False
            self.version += 1
            self._log.append((self.version, False, gone))
            return True
        if user_id in self.members:
            return False
        self.members[user_id] = member
        self.version += 1
        self._log.append((self.version, True, member))
        return True

    def replace(self, members: Mapping[str, Member]) -> None:
        """Adopt a full snapshot, logging the difference as changes (a resynchronisation)."""
        for user_id in [u for u in self.members if u not in members]:
            self.apply(user_id, None)
        for user_id, member in members.items():
            self.apply(user_id, member)

    def changes_since(self, version: int) -> tuple[list[Member], list[Member]]:
        """Net (joined, left) between `version` and now (see `net_changes`)."""
        if version >= self.version:
            return [], []
        return net_changes((came, member) for v, came, member in self._log if v > version)

    def trim(self, oldest_needed: int) -> None:
        """Forget changes at or below `oldest_needed` (no subscriber is behind it)."""
        while self._log and self._log[0][0] <= oldest_needed:
            self._log.popleft()

    @property
    def logged(self) -> int:
        """How many changes the log holds (bounded by what subscribers still need)."""
        return len(self._log)


# --------------------------------------------------------------------------- frames


def presence_frame(
    online: int,
    guests: int,
    *,
    members: Iterable[Member] | None = None,
    joined: Iterable[Member] | None = None,
    left: Iterable[Member] | None = None,
) -> bytes:
    """`{"op": "presence", "channel": "presence", "online", "guests", ...}`; no seq, ever."""
    frame: dict[str, Any] = {
        "op": "presence",
        "channel": PRESENCE_CHANNEL,
        "online": online,
        "guests": guests,
    }
    if members is not None:
        frame["members"] = [m.as_json() for m in members]
    if joined is not None:
        frame["joined"] = [m.as_json() for m in joined]
    if left is not None:
        frame["left"] = [m.as_json() for m in left]
    return _encoder.encode(frame)


@dataclasses.dataclass(slots=True)
class _Watcher:
    version: int
    online: int
    guests: int
    sent_at: float


class PresenceBoard(Generic[K]):
    """The presence subscribers of one instance and the frames they are due.

    Guarantees: a subscriber gets one snapshot, then frames no closer than
    `interval` seconds apart, each saying what changed since the one before
    (net); no frame when nothing it can see changed. Work per tick is one
    diff and two frame encodings per distinct version among due subscribers
    (all subscribers that were sent the last tick's frame share a version).
    The snapshot lists at most `max_members` people (`online` still counts
    everyone): beyond that a list is too big to be useful in one frame.
    """

    def __init__(
        self,
        view: PresenceView,
        *,
        interval: float = DEFAULT_INTERVAL_SECONDS,
        max_members: int = DEFAULT_MAX_MEMBERS,
    ) -> None:
        self.view = view
        self.guests = 0
        self.interval = interval
        self.max_members = max_members
        self._watchers: dict[K, _Watcher] = {}

    def __len__(self) -> int:
        return len(self._watchers)

    def __contains__(self, key: object) -> bool:
        return key in self._watchers

    def counts(self) -> tuple[int, int]:
        return len(self.view), self.guests

    def listed(self) -> list[Member]:
        """The people a snapshot lists (at most `max_members`)."""
        members = self.view.members.values()
        if len(self.view) <= self.max_members:
            return list(members)
        return [m for _, m in zip(range(self.max_members), members, strict=False)]

    def snapshot(self, names: bool) -> bytes:
        online, guests = self.counts()
        return presence_frame(online, guests, members=self.listed() if names else None)

    def watch(self, key: K, names: bool, now: float) -> bytes:
        """Start watching: the snapshot frame to send after `subscribed`."""
        online, guests = self.counts()
        self._watchers[key] = _Watcher(self.view.version, online, guests, now)
        return self.snapshot(names)

    def unwatch(self, key: K) -> None:
        self._watchers.pop(key, None)

    def due_frames(self, now: float, names: Callable[[K], bool]) -> list[tuple[K, bytes]]:
        """The frames to send now, one per subscriber at most; `names(key)` says who sees lists."""
        online, guests = self.counts()
        version = self.view.version
        frames: list[tuple[K, bytes]] = []
        built: dict[tuple[int, bool], tuple[bytes, bool]] = {}
        for key, watcher in self._watchers.items():
            if now - watcher.sent_at < self.interval:
                continue
            counts_changed = (watcher.online, watcher.guests) != (online, guests)
            if watcher.version == version and not counts_changed:
                continue
            sees = names(key)
            group = (watcher.version, sees)
            if group not in built:
                joined, left = self.view.changes_since(watcher.version)
                people_changed = bool(joined or left)
                payload = (
                    presence_frame(online, guests, joined=joined, left=left)
                    if sees
                    else presence_frame(online, guests)
                )
                built[group] = (payload, people_changed)
            payload, people_changed = built[group]
            watcher.version = version
            if counts_changed or (sees and people_changed):
                watcher.online, watcher.guests, watcher.sent_at = online, guests, now
                frames.append((key, payload))
        self.view.trim(min((w.version for w in self._watchers.values()), default=version))
        return frames
