"""The subjects of the events that cross from one service to another.

A subject is the contract between its publisher and its consumers, so it is
declared once, here: the publisher's `events` module and every consumer's
import the same name, and a renamed subject cannot leave a consumer listening
for something nobody sends. Payloads stay with their publisher (its
`events.CATALOGUE`); a consumer declares only the fields it reads.
"""

from __future__ import annotations

from typing import Final

# --------------------------------------------------------------------------- posts

POST_CREATED: Final = "posts.post.created"
POST_UPDATED: Final = "posts.post.updated"
POST_DELETED: Final = "posts.post.deleted"
POST_PINNED: Final = "posts.post.pinned"
POST_UNPINNED: Final = "posts.post.unpinned"
POST_LIKED: Final = "posts.post.liked"
POST_UNLIKED: Final = "posts.post.unliked"
REPLY_CREATED: Final = "posts.reply.created"
REPLY_UPDATED: Final = "posts.reply.updated"
REPLY_DELETED: Final = "posts.reply.deleted"
REPORT_CREATED: Final = "posts.report.created"
REPORT_RESOLVED: Final = "posts.report.resolved"

# --------------------------------------------------------------------------- goals

GOAL_REQUESTED: Final = "goals.goal.requested"
GOAL_ASSIGNED: Final = "goals.goal.assigned"
GOAL_REJECTED: Final = "goals.goal.rejected"
GOAL_COMPLETED: Final = "goals.goal.completed"
SUBMISSION_CREATED: Final = "goals.submission.created"
SUBMISSION_APPROVED: Final = "goals.submission.approved"
SUBMISSION_REJECTED: Final = "goals.submission.rejected"
STORY_CREATED: Final = "goals.story.created"
STORY_PUBLISHED: Final = "goals.story.published"
