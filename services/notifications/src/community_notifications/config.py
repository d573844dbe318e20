"""The notifications service's own settings, beside the shared `Settings`.

- `VAPID_PRIVATE_KEY` (unset: a development key generated once and kept in the database):
  the application server key, base64url of the 32-byte P-256 scalar, or PEM;
- `VAPID_SUBJECT` (`mailto:push@community-live.invalid`): the VAPID `sub`, how a push
  service's operator reaches us;
- `PUSH_ALLOW_INSECURE_ENDPOINTS` (`0`): `1` accepts `http://` endpoints on loopback (tests);
- `NOTIFICATIONS_SENDERS` (16): pushes in flight at once per instance;
- `NOTIFICATIONS_PUSH_TIMEOUT_SECONDS` (10): a push service that has not answered by then
  is tried again later;
- `NOTIFICATIONS_LEASE_SECONDS` (20): a push claimed by an instance that died before
  recording the answer is given up (`unknown`, never sent again) after this long;
- `NOTIFICATIONS_POLL_SECONDS` (0.5): how often the sender looks for due retries and for
  work other instances recorded.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping


@dataclasses.dataclass(frozen=True, kw_only=True)
class NotificationsConfig:
    vapid_private_key: str | None = dataclasses.field(default=None, repr=False)
    vapid_subject: str = "mailto:push@community-live.invalid"
    allow_insecure_endpoints: bool = False
    senders: int = 16
    push_timeout_seconds: float = 10.0
    poll_seconds: float = 0.5
    lease_seconds: float = 20.0
    """A claimed push whose sender has not recorded an answer by then is given up as `unknown`
    (longer than the push timeout: a live sender always records its answer first)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NotificationsConfig:
        env = os.environ if env is None else env
        return cls(
            vapid_private_key=env.get("VAPID_PRIVATE_KEY") or None,
            vapid_subject=env.get("VAPID_SUBJECT", cls.vapid_subject),
            allow_insecure_endpoints=env.get("PUSH_ALLOW_INSECURE_ENDPOINTS", "0") == "1",
            senders=int(env.get("NOTIFICATIONS_SENDERS", "16")),
            push_timeout_seconds=float(env.get("NOTIFICATIONS_PUSH_TIMEOUT_SECONDS", "10")),
            poll_seconds=float(env.get("NOTIFICATIONS_POLL_SECONDS", "0.5")),
            lease_seconds=float(env.get("NOTIFICATIONS_LEASE_SECONDS", "20")),
        )
