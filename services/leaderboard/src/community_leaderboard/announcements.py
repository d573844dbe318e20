"""The events the leaderboard writes to its outbox, built from what was decided; pure.

Each function returns (envelope, aggregate) pairs for a unit of work (`UnitOfWork.add`).
The aggregate orders a stream of events for the relay: one per board keeps a
board's moves in the order they happened, one per student their badges.
Students who hide themselves from the leaderboard are left out of the
announcements that name them (badges, activity); the amounts of those who hide
their earnings are left out of the ticker's text.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping, Sequence

import msgspec
from community_shared.events import Envelope, make_event

from community_leaderboard import events as ev
from community_leaderboard import rules
from community_leaderboard.planner import BadgeChange
from community_leaderboard.rows import ActivityRow, PrivacyRow, Profile
from community_leaderboard.schemas import BoardItem, CommunityStats

UNNAMED = "Student"
"""The name shown for a student no event and no token has named."""

Outgoing = list[tuple[Envelope, str]]


def event(type_: str, payload: msgspec.Struct, aggregate: str) -> tuple[Envelope, str]:
    return make_event(type_, payload, source=ev.SOURCE, actor_id=None), aggregate


def rank_changed(
    board: str, user_id: uuid.UUID, old_rank: int | None, new_rank: int | None, points: int
) -> tuple[Envelope, str]:
    payload = ev.RankChanged(
        board=board, user_id=user_id, old_rank=old_rank, new_rank=new_rank, points=points
    )
    # one aggregate per board keeps a board's moves in the order they happened
    return event(ev.RANK_CHANGED, payload, f"board:{board}")


def badges_changed(
    awards: Sequence[BadgeChange],
    revokes: Sequence[BadgeChange],
    holders: Mapping[uuid.UUID, Profile],
    at: dt.datetime,
) -> tuple[Outgoing, list[ActivityRow]]:
    """`badge.awarded` and `badge.revoked` for the changes that took effect, and
    an activity item for each award; none for a student who hides themselves
    (or whose profile is not in `holders`)."""
    out: Outgoing = []
    activity: list[ActivityRow] = []
    for changes, type_ in ((awards, ev.BADGE_AWARDED), (revokes, ev.BADGE_REVOKED)):
        for user_id, badge in changes:
            holder = holders.get(user_id)
            if holder is None or not holder.visible:
                continue  # an opted-out student's badges are not announced
            payload = ev.BadgeChanged(user_id=user_id, name=holder.name or UNNAMED, badge=badge)
            out.append(event(type_, payload, f"student:{user_id}"))
            if type_ == ev.BADGE_AWARDED:
                activity.append(
                    ActivityRow(
                        id=uuid.uuid4(),
                        kind="badge.awarded",
                        user_id=user_id,
                        occurred_at=at,
                        subject_id=badge,
                        amount=None,
                        detail=badge,
                        ref={"badge": badge},
                    )
                )
    return out, activity


def activity_recorded(
    rows: Sequence[ActivityRow],
    name_of: Callable[[uuid.UUID], str | None],
    privacy: Mapping[uuid.UUID, PrivacyRow],
) -> Outgoing:
    """`activity.recorded` for each new activity item of a student who shows on
    the leaderboard, its text as the ticker shows it."""
    out: Outgoing = []
    for a in rows:
        choice = privacy[a.user_id]
        if not choice.show_on_leaderboard:
            continue
        name = name_of(a.user_id) or UNNAMED
        item = ev.ActivityRecorded(
            id=a.id,
            type=a.kind,
            user_id=a.user_id,
            name=name,
            text=rules.activity_text(
                a.kind,
                name,
                detail=a.detail,
                amount=a.amount,
                show_earnings=choice.show_earnings,
            ),
            occurred_at=a.occurred_at,
            ref=a.ref,
        )
        out.append(event(ev.ACTIVITY_RECORDED, item, "activity"))
    return out


def stats_updated(stats: CommunityStats) -> ev.StatsUpdated:
    return ev.StatsUpdated(
        total_students=stats.total_students,
        active_this_week=stats.active_this_week,
        total_earnings=stats.total_earnings,
        average_learn_rate=stats.average_learn_rate,
        students_by_track=stats.students_by_track,
    )


def top_changed(board: str, items: list[BoardItem]) -> tuple[Envelope, str]:
    return event(ev.TOP_CHANGED, ev.TopChanged(board=board, items=items), f"top:{board}")
