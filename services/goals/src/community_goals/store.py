"""SQL of the goals service, and nothing but SQL.

Every function takes the connection of the caller's transaction. Names are
qualified with the `goals` schema (the pool's search_path is not set). Each
list query is served by an index of migrations/0001_goals.sql, named next to
it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Final, TypeAlias

import asyncpg

SCHEMA: Final = "goals"

Record: TypeAlias = asyncpg.Record


# --------------------------------------------------------------------------- catalog


async def fetch_catalog(conn: asyncpg.Connection) -> list[Record]:
    return list(
        await conn.fetch(
            """SELECT t.slug AS track_slug, t.name AS track_name, t.metric, t.position AS track_pos,
                      g.id AS goal_id, g.slug, g.name, g.target, g.position
               FROM goals.tracks t JOIN goals.goals g ON g.track_id = t.id
               ORDER BY t.position, g.position"""
        )
    )


# --------------------------------------------------------------------------- students


async def upsert_student(conn: asyncpg.Connection, student_id: uuid.UUID, name: str) -> None:
    """Create the profile on first use; keep the name in step with the latest token."""
    await conn.execute(
        """INSERT INTO goals.students (id, name) VALUES ($1, $2)
           ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, updated_at = clock_timestamp()
           WHERE goals.students.name IS DISTINCT FROM EXCLUDED.name""",
        student_id,
        name,
    )


_STUDENT_COLUMNS = """s.id, s.name, s.current_goal_id, s.goal_status, s.goal_started_at,
    s.total_revenue_earned, s.current_mrr, s.last_verified_amount, s.pseudonym_no"""


async def fetch_student(
    conn: asyncpg.Connection, student_id: uuid.UUID, *, for_update: bool = False
) -> Record | None:
    lock = " FOR UPDATE" if for_update else ""
    row: Record | None = await conn.fetchrow(
        f"SELECT {_STUDENT_COLUMNS} FROM goals.students s WHERE s.id = $1{lock}", student_id
    )
    return row


async def lock_student_of_review(conn: asyncpg.Connection, review_id: uuid.UUID) -> Record | None:
    """The student who asked for a review, locked (None: no such review). Primary keys both ways."""
    row: Record | None = await conn.fetchrow(
        f"""SELECT {_STUDENT_COLUMNS}
            FROM goals.reviews r JOIN goals.students s ON s.id = r.student_id
            WHERE r.id = $1 FOR UPDATE OF s""",
        review_id,
    )
    return row


async def update_student_goal(
    conn: asyncpg.Connection,
    student_id: uuid.UUID,
    *,
    goal_id: uuid.UUID,
    goal_status: str,
    goal_started_at: dt.datetime,
    total_revenue_earned: Decimal,
    current_mrr: Decimal,
    last_verified_amount: Decimal | None,
) -> None:
    await conn.execute(
        """UPDATE goals.students
           SET current_goal_id = $2, goal_status = $3, goal_started_at = $4,
               total_revenue_earned = $5, current_mrr = $6, last_verified_amount = $7,
               updated_at = clock_timestamp()
           WHERE id = $1""",
        student_id,
        goal_id,
        goal_status,
        goal_started_at,
        total_revenue_earned,
        current_mrr,
        last_verified_amount,
    )


async def assign_pseudonym(conn: asyncpg.Connection, student_id: uuid.UUID) -> int:
    """The student's pseudonym number, drawn once and kept forever."""
    number: int = await conn.fetchval(
        """UPDATE goals.students
           SET pseudonym_no = COALESCE(pseudonym_no, nextval('goals.pseudonym_numbers'))
           WHERE id = $1
           RETURNING pseudonym_no""",
        student_id,
    )
    return number


async def fetch_rpc_profile(
    conn: asyncpg.Connection | asyncpg.Pool, user_id: uuid.UUID
) -> Record | None:
    """One primary-key lookup with two primary-key joins (rpc.goals.profile)."""
    row: Record | None = await conn.fetchrow(
        """SELECT s.id, s.total_revenue_earned, s.current_mrr,
                  t.slug AS track, g.slug AS goal_slug, g.name AS goal_name
           FROM goals.students s
           LEFT JOIN goals.goals g ON g.id = s.current_goal_id
           LEFT JOIN goals.tracks t ON t.id = g.track_id
           WHERE s.id = $1""",
        user_id,
    )
    return row


# --------------------------------------------------------------------------- completed goals


async def fetch_completed(conn: asyncpg.Connection, student_id: uuid.UUID) -> list[Record]:
    return list(
        await conn.fetch(
            """SELECT c.goal_id, c.completed_at, c.days_to_complete, c.amount
               FROM goals.completed_goals c JOIN goals.goals g ON g.id = c.goal_id
               WHERE c.student_id = $1
               ORDER BY c.completed_at, g.position""",
            student_id,
        )
    )


async def insert_completed(
    conn: asyncpg.Connection,
    student_id: uuid.UUID,
    goal_id: uuid.UUID,
    *,
    completed_at: dt.datetime,
    days_to_complete: int,
    amount: Decimal,
) -> None:
    await conn.execute(
        """INSERT INTO goals.completed_goals
               (student_id, goal_id, completed_at, days_to_complete, amount)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (student_id, goal_id) DO NOTHING""",
        student_id,
        goal_id,
        completed_at,
        days_to_complete,
        amount,
    )


# --------------------------------------------------------------------------- reviews

_REVIEW_COLUMNS = """r.id, r.kind, r.status, r.student_id, s.name AS student_name, r.goal_id,
                     r.amount, r.proof_url, r.note, r.created_at, r.reviewed_by, r.reviewed_at,
                     r.rejection_reason"""


async def fetch_pending_review(conn: asyncpg.Connection, student_id: uuid.UUID) -> Record | None:
    """The student's one pending review, if any (index reviews_one_pending_per_student)."""
    row: Record | None = await conn.fetchrow(
        "SELECT id, kind FROM goals.reviews WHERE student_id = $1 AND status = 'pending'",
        student_id,
    )
    return row


async def fetch_latest_reviews(conn: asyncpg.Connection, student_id: uuid.UUID) -> list[Record]:
    """The latest review of each kind (index reviews_by_student_kind)."""
    return list(
        await conn.fetch(
            """SELECT DISTINCT ON (kind) id, kind, status, goal_id, amount, created_at,
                      reviewed_at, rejection_reason
               FROM goals.reviews WHERE student_id = $1
               ORDER BY kind, created_at DESC, id DESC""",
            student_id,
        )
    )


async def insert_review(
    conn: asyncpg.Connection,
    *,
    review_id: uuid.UUID,
    kind: str,
    student_id: uuid.UUID,
    goal_id: uuid.UUID,
    amount: Decimal | None = None,
    proof_url: str | None = None,
    note: str | None = None,
) -> Record:
    """Insert a pending review; return it as a submission is answered (`views.submission`).

    Raises asyncpg.UniqueViolationError when the student already has one pending.
    """
    row: Record = await conn.fetchrow(
        """INSERT INTO goals.reviews (id, kind, student_id, goal_id, amount, proof_url, note)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           RETURNING id, goal_id, amount, proof_url, note, status, created_at, reviewed_at,
                     rejection_reason""",
        review_id,
        kind,
        student_id,
        goal_id,
        amount,
        proof_url,
        note,
    )
    return row


async def fetch_review(conn: asyncpg.Connection, review_id: uuid.UUID) -> Record | None:
    row: Record | None = await conn.fetchrow(
        f"""SELECT {_REVIEW_COLUMNS}
            FROM goals.reviews r JOIN goals.students s ON s.id = r.student_id
            WHERE r.id = $1""",
        review_id,
    )
    return row


async def decide_review(
    conn: asyncpg.Connection,
    review_id: uuid.UUID,
    *,
    status: str,
    reviewed_by: uuid.UUID,
    reviewed_at: dt.datetime,
    rejection_reason: str | None,
) -> bool:
    """Decide a pending review; False when it is not pending (any more).

    The `status = 'pending'` condition is re-checked on the latest row version
    after a concurrent decision commits, so of two instructors deciding at once
    exactly one gets True.
    """
    decided = await conn.fetchval(
        """UPDATE goals.reviews
           SET status = $2, reviewed_by = $3, reviewed_at = $4, rejection_reason = $5
           WHERE id = $1 AND status = 'pending'
           RETURNING id""",
        review_id,
        status,
        reviewed_by,
        reviewed_at,
        rejection_reason,
    )
    return decided is not None


async def list_reviews(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    status: str,
    after: tuple[dt.datetime, uuid.UUID] | None,
    limit: int,
) -> list[Record]:
    """The queue, oldest first (index reviews_queue)."""
    if after is None:
        rows = await conn.fetch(
            f"""SELECT {_REVIEW_COLUMNS}
                FROM goals.reviews r JOIN goals.students s ON s.id = r.student_id
                WHERE r.status = $1
                ORDER BY r.created_at, r.id
                LIMIT $2""",
            status,
            limit,
        )
    else:
        rows = await conn.fetch(
            f"""SELECT {_REVIEW_COLUMNS}
                FROM goals.reviews r JOIN goals.students s ON s.id = r.student_id
                WHERE r.status = $1 AND (r.created_at, r.id) > ($2, $3)
                ORDER BY r.created_at, r.id
                LIMIT $4""",
            status,
            after[0],
            after[1],
            limit,
        )
    return list(rows)


async def list_submissions(
    conn: asyncpg.Connection | asyncpg.Pool,
    student_id: uuid.UUID,
    *,
    before: tuple[dt.datetime, uuid.UUID] | None,
    limit: int,
) -> list[Record]:
    """A student's revenue submissions, newest first (index reviews_by_student_kind)."""
    if before is None:
        rows = await conn.fetch(
            f"""SELECT {_REVIEW_COLUMNS}
                FROM goals.reviews r JOIN goals.students s ON s.id = r.student_id
                WHERE r.student_id = $1 AND r.kind = 'revenue_submission'
                ORDER BY r.created_at DESC, r.id DESC
                LIMIT $2""",
            student_id,
            limit,
        )
    else:
        rows = await conn.fetch(
            f"""SELECT {_REVIEW_COLUMNS}
                FROM goals.reviews r JOIN goals.students s ON s.id = r.student_id
                WHERE r.student_id = $1 AND r.kind = 'revenue_submission'
                  AND (r.created_at, r.id) < ($2, $3)
                ORDER BY r.created_at DESC, r.id DESC
                LIMIT $4""",
            student_id,
            before[0],
            before[1],
            limit,
        )
    return list(rows)


async def list_history(
    conn: asyncpg.Connection, student_id: uuid.UUID, *, limit: int
) -> list[Record]:
    """A student's reviews of both kinds, newest first (index reviews_by_student)."""
    return list(
        await conn.fetch(
            f"""SELECT {_REVIEW_COLUMNS}
                FROM goals.reviews r JOIN goals.students s ON s.id = r.student_id
                WHERE r.student_id = $1
                ORDER BY r.created_at DESC, r.id DESC
                LIMIT $2""",
            student_id,
            limit,
        )
    )


# --------------------------------------------------------------------------- stories

_STORY_COLUMNS = """st.id, st.author_id, s.name AS author_name, s.pseudonym_no, st.title, st.story,
                    st.earnings_amount, st.anonymous, st.status, st.created_at, st.published_at"""


async def insert_story(
    conn: asyncpg.Connection,
    *,
    story_id: uuid.UUID,
    author_id: uuid.UUID,
    title: str,
    story: str,
    earnings_amount: Decimal | None,
    anonymous: bool,
) -> None:
    await conn.execute(
        """INSERT INTO goals.stories (id, author_id, title, story, earnings_amount, anonymous)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        story_id,
        author_id,
        title,
        story,
        earnings_amount,
        anonymous,
    )


async def fetch_story(conn: asyncpg.Connection, story_id: uuid.UUID) -> Record | None:
    row: Record | None = await conn.fetchrow(
        f"""SELECT {_STORY_COLUMNS}
            FROM goals.stories st JOIN goals.students s ON s.id = st.author_id
            WHERE st.id = $1""",
        story_id,
    )
    return row


async def publish_story(
    conn: asyncpg.Connection,
    story_id: uuid.UUID,
    *,
    published_by: uuid.UUID,
    published_at: dt.datetime,
) -> bool:
    """Publish a pending story; False when it is not pending (any more)."""
    done = await conn.fetchval(
        """UPDATE goals.stories SET status = 'published', published_at = $2, published_by = $3
           WHERE id = $1 AND status = 'pending'
           RETURNING id""",
        story_id,
        published_at,
        published_by,
    )
    return done is not None


async def list_published_stories(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    before: tuple[dt.datetime, uuid.UUID] | None,
    limit: int,
) -> list[Record]:
    """Published stories, newest first (index stories_published)."""
    if before is None:
        rows = await conn.fetch(
            f"""SELECT {_STORY_COLUMNS}
                FROM goals.stories st JOIN goals.students s ON s.id = st.author_id
                WHERE st.status = 'published'
                ORDER BY st.published_at DESC, st.id DESC
                LIMIT $1""",
            limit,
        )
    else:
        rows = await conn.fetch(
            f"""SELECT {_STORY_COLUMNS}
                FROM goals.stories st JOIN goals.students s ON s.id = st.author_id
                WHERE st.status = 'published' AND (st.published_at, st.id) < ($1, $2)
                ORDER BY st.published_at DESC, st.id DESC
                LIMIT $3""",
            before[0],
            before[1],
            limit,
        )
    return list(rows)


async def list_pending_stories(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    after: tuple[dt.datetime, uuid.UUID] | None,
    limit: int,
) -> list[Record]:
    """Stories waiting for verification, oldest first (index stories_pending)."""
    if after is None:
        rows = await conn.fetch(
            f"""SELECT {_STORY_COLUMNS}
                FROM goals.stories st JOIN goals.students s ON s.id = st.author_id
                WHERE st.status = 'pending'
                ORDER BY st.created_at, st.id
                LIMIT $1""",
            limit,
        )
    else:
        rows = await conn.fetch(
            f"""SELECT {_STORY_COLUMNS}
                FROM goals.stories st JOIN goals.students s ON s.id = st.author_id
                WHERE st.status = 'pending' AND (st.created_at, st.id) > ($1, $2)
                ORDER BY st.created_at, st.id
                LIMIT $3""",
            after[0],
            after[1],
            limit,
        )
    return list(rows)
