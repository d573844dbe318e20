"""What the posts service listens to on NATS.

Only one thing: goals events after which a student's tagline may have changed,
to evict it from the tagline cache at once instead of waiting for its TTL.
This is a cache hint, not a state change, so a plain (non-durable) subscription
is enough: a missed event only means the old tagline shows until the TTL ends.
"""

from __future__ import annotations

import logging

import msgspec
from community_shared.events import decode_data, decode_envelope
from community_shared.web import Runtime
from nats.aio.msg import Msg

from community_posts.events import GOALS_TAGLINE_CHANGES, GoalsStudentRef
from community_posts.taglines import TaglineDirectory

log = logging.getLogger(__name__)


async def tagline_evictions(runtime: Runtime) -> None:
    """An `on_nats_ready` hook subscribing the tagline cache to goal changes."""
    assert runtime.nats is not None
    taglines: TaglineDirectory = runtime.services["posts"].taglines

    async def on_goal_changed(msg: Msg) -> None:
        try:
            student = decode_data(decode_envelope(msg.data), GoalsStudentRef)
        except (msgspec.DecodeError, msgspec.ValidationError):
            log.warning("ignoring a malformed goals event on %s", msg.subject)
            return
        taglines.forget(student.student_id)

    for subject in GOALS_TAGLINE_CHANGES:
        await runtime.nats.subscribe(runtime.settings.subject(subject), cb=on_goal_changed)
