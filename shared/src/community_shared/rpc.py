"""The request/reply contracts between services (NATS request/reply: never
captured by a stream, answered by whichever instance of the service is free).

The requester and the responder are different services, so the request, its
subject and the replies are declared once, here, and both import them; a
requester that needs only part of a reply may decode it with a type of its own.
"""

from __future__ import annotations

import uuid
from typing import Final

import msgspec

RPC_GOALS_PROFILE: Final = "rpc.goals.profile"
"""The goals service answers a user's track, goal and revenue (`ProfileReply`) or
an `RpcError`."""


class ProfileRequest(msgspec.Struct, frozen=True, kw_only=True):
    user_id: uuid.UUID


class ProfileReply(msgspec.Struct, frozen=True, kw_only=True):
    user_id: uuid.UUID
    track: str | None
    goal_slug: str | None
    goal_name: str | None
    total_revenue_earned: str
    current_mrr: str


class RpcError(msgspec.Struct, frozen=True, kw_only=True):
    error: str
