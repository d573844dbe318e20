"""NATS request/reply responders of the goals service.

`rpc.goals.profile` answers other services (the posts service shows an
author's goal under their name) from one primary-key query. Replies are
`ProfileReply`, or `{"error": "not_found"}` for a user without a goals
profile, `{"error": "bad_request"}` for a request that is not `{user_id}`,
`{"error": "unavailable"}` when the database cannot answer. The responders of
every instance share a queue group, so each request is answered once.
"""

from __future__ import annotations

import logging

import msgspec
from community_shared import rpc
from community_shared.metrics import DEPENDENCY_ERRORS
from community_shared.web import Runtime
from nats.aio.msg import Msg

from community_goals.service import GoalsService

log = logging.getLogger(__name__)

QUEUE_GROUP = "goals"

_encoder = msgspec.json.Encoder()
_request_decoder = msgspec.json.Decoder(rpc.ProfileRequest)


async def answer_profile(service: GoalsService, payload: bytes) -> bytes:
    """The reply to one `rpc.goals.profile` request (never raises)."""
    try:
        request = _request_decoder.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return _encoder.encode(rpc.RpcError(error="bad_request"))
    try:
        profile = await service.rpc_profile(request.user_id)
    except Exception:
        log.warning("rpc.goals.profile: database unavailable", exc_info=True)
        DEPENDENCY_ERRORS.labels(dependency="postgres", operation="rpc.goals.profile").inc()
        return _encoder.encode(rpc.RpcError(error="unavailable"))
    if profile is None:
        return _encoder.encode(rpc.RpcError(error="not_found"))
    return _encoder.encode(profile)


async def profile_responder(runtime: Runtime) -> None:
    """The `on_nats_ready` hook that subscribes the `rpc.goals.profile` responder."""
    assert runtime.nats is not None
    service: GoalsService = runtime.services["goals"]

    async def on_request(msg: Msg) -> None:
        reply = await answer_profile(service, msg.data)
        if msg.reply:
            await msg.respond(reply)

    subscription = await runtime.nats.subscribe(
        runtime.settings.subject(rpc.RPC_GOALS_PROFILE), queue=QUEUE_GROUP, cb=on_request
    )

    async def unsubscribe() -> None:
        await subscription.unsubscribe()

    runtime.closers.append(unsubscribe)
