"""When to ping a connection and when to give it up (sans I/O).

SPEC §9: the server pings; a connection that answers no ping within the
timeout is closed. websockets would run one keepalive task per connection
(a task, its coroutine, a sleeping future and a timer: ~1.5 KiB each while
idle); the gateway instead looks at every connection from the one loop that
already checks their backlogs, and each connection keeps only this clock and,
while a ping is out, the future its pong completes.
"""

from __future__ import annotations

from typing import Literal

PingStep = Literal["ping", "give up"] | None


class PingClock:
    """One connection's keepalive: a ping every `interval`, given up after `timeout` unanswered.

    The next ping is due `interval` after the previous one was sent, once it
    was answered; an unanswered ping is given up `timeout` after it was sent.
    The caller observes now and then (the coarser, the later a ping leaves or
    a dead peer is found, by at most one observation period).
    """

    __slots__ = ("_due", "_waiting", "interval", "timeout")

    def __init__(self, now: float, interval: float, timeout: float) -> None:
        if interval <= 0 or timeout <= 0:
            raise ValueError("interval and timeout must be positive")
        self.interval = interval
        self.timeout = timeout
        self._due = now + interval
        """While waiting: when the ping is given up; otherwise: when the next ping is due."""
        self._waiting = False

    @property
    def waiting(self) -> bool:
        """Whether a ping is out and unanswered."""
        return self._waiting

    def observe(self, now: float, *, answered: bool) -> PingStep:
        """What to do now: send a ping, give the connection up, or nothing (None).

        `answered`: whether the ping that is out (if any) has had its pong.
        """
        if self._waiting:
            if not answered:
                return "give up" if now >= self._due else None
            self._waiting = False
            self._due += self.interval - self.timeout  # `interval` after that ping was sent
        if now < self._due:
            return None
        self._waiting = True
        self._due = now + self.timeout
        return "ping"
