"""The demo community, as plain data: who is in it and what they did.

Nothing here does I/O. `infra.seed` replays this through the services' public
HTTP APIs and publishes the learning events to JetStream. Ids are stable
(uuid5 of a name), so the same people and the same learning events come back
on every machine and every run: tokens printed by the runner keep working
after a restart, and a learning event published twice carries the same id and
is applied once.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass, field
from typing import Literal

DEMO_NAMESPACE = uuid.UUID("5b0c5f9e-3f0e-4d8b-9a59-6c1f0f3c2a10")


def demo_id(kind: str, key: str) -> uuid.UUID:
    """A stable id for a demo thing (`kind` keeps users, videos and events apart)."""
    return uuid.uuid5(DEMO_NAMESPACE, f"{kind}:{key}")


# --------------------------------------------------------------------------- people


@dataclass(frozen=True)
class DemoUser:
    name: str
    role: Literal["student", "instructor", "admin"]
    track: Literal["agency", "saas"] | None = None

    @property
    def id(self) -> uuid.UUID:
        return demo_id("user", self.name)


STUDENTS: tuple[DemoUser, ...] = (
    DemoUser("Ada Lovelace", "student", "agency"),
    DemoUser("Maya Patel", "student", "agency"),
    DemoUser("Jonas Weber", "student", "agency"),
    DemoUser("Aisha Bello", "student", "agency"),
    DemoUser("Lucas Moreau", "student", "agency"),
    DemoUser("Sofia Rossi", "student", "agency"),
    DemoUser("Diego Alvarez", "student", "agency"),
    DemoUser("Kenji Tanaka", "student", "saas"),
    DemoUser("Emma Johansson", "student", "saas"),
    DemoUser("Priya Sharma", "student", "saas"),
    DemoUser("Noah Williams", "student", "saas"),
    DemoUser("Fatima Zahra", "student", "saas"),
)
INSTRUCTORS: tuple[DemoUser, ...] = (
    DemoUser("Rachel Kim", "instructor"),
    DemoUser("Marcus Reed", "instructor"),
)
ADMINS: tuple[DemoUser, ...] = (DemoUser("Sam Carter", "admin"),)
EVERYONE: tuple[DemoUser, ...] = STUDENTS + INSTRUCTORS + ADMINS
BY_NAME: dict[str, DemoUser] = {user.name: user for user in EVERYONE}


def user(name: str) -> DemoUser:
    return BY_NAME[name]


# The people the runner prints ready-made tokens for.
SHOWCASE: tuple[DemoUser, ...] = (user("Ada Lovelace"), user("Rachel Kim"), user("Sam Carter"))


# --------------------------------------------------------------------------- goals


@dataclass(frozen=True)
class DemoSubmission:
    amount: str
    decision: Literal["approve", "reject", "pending"]
    note: str | None = None
    reason: str | None = None  # for a rejection

    def proof_url(self, student: DemoUser, index: int) -> str:
        return f"https://proofs.example.com/{student.id.hex[:12]}/{index + 1}.png"


@dataclass(frozen=True)
class GoalPlan:
    student: DemoUser
    goal_slug: str
    approve_goal: bool = True
    submissions: tuple[DemoSubmission, ...] = ()


def _ok(amount: str, note: str | None = None) -> DemoSubmission:
    return DemoSubmission(amount, "approve", note)


GOAL_PLANS: tuple[GoalPlan, ...] = (
    GoalPlan(
        user("Ada Lovelace"),
        "agency-1k",
        submissions=(
            _ok("1200.00", "Website retainer, first month"),
            _ok("2100.00", "Two landing pages for a dental clinic"),
        ),
    ),
    GoalPlan(user("Maya Patel"), "agency-1k", submissions=(_ok("400.00"), _ok("350.00"))),
    GoalPlan(
        user("Jonas Weber"),
        "agency-1k",
        submissions=(
            _ok("650.00", "SEO audit"),
            DemoSubmission("900.00", "pending", "Monthly retainer, invoice paid yesterday"),
        ),
    ),
    GoalPlan(
        user("Aisha Bello"),
        "agency-3k",
        submissions=(_ok("2500.00"), _ok("4000.00", "Rebrand project, paid in full")),
    ),
    GoalPlan(
        user("Lucas Moreau"),
        "agency-1k",
        submissions=(
            DemoSubmission(
                "300.00",
                "reject",
                reason="The screenshot does not show the payout date; please upload the invoice.",
            ),
            _ok("300.00", "Invoice attached this time"),
        ),
    ),
    GoalPlan(user("Sofia Rossi"), "agency-1k", approve_goal=False),
    GoalPlan(user("Diego Alvarez"), "agency-1k", submissions=(_ok("800.00"),)),
    GoalPlan(
        user("Kenji Tanaka"),
        "saas-1k-mrr",
        submissions=(_ok("450.00"), _ok("1150.00", "Stripe dashboard, 38 subscribers")),
    ),
    GoalPlan(user("Emma Johansson"), "saas-1k-mrr", submissions=(_ok("300.00"),)),
    GoalPlan(
        user("Priya Sharma"),
        "saas-1k-mrr",
        submissions=(_ok("1400.00"), _ok("5600.00", "Annual plans launched")),
    ),
    GoalPlan(user("Noah Williams"), "saas-1k-mrr", submissions=(_ok("120.00"),)),
    GoalPlan(user("Fatima Zahra"), "saas-1k-mrr", submissions=(_ok("700.00"),)),
)


@dataclass(frozen=True)
class DemoStory:
    author: DemoUser
    title: str
    story: str
    earnings_amount: str | None
    anonymous: bool
    publish: bool


STORIES: tuple[DemoStory, ...] = (
    DemoStory(
        user("Ada Lovelace"),
        "From zero to my first $1k client in five weeks",
        "I sent 40 cold emails using the template pack, booked six calls and closed a "
        "website retainer. The trick was a one-page proposal with a single clear price.",
        "1200.00",
        anonymous=False,
        publish=True,
    ),
    DemoStory(
        user("Priya Sharma"),
        "How annual plans doubled my MRR",
        "Offering a yearly plan at two months free turned a third of my monthly users "
        "into annual ones, and churn dropped in the same month.",
        "5600.00",
        anonymous=True,
        publish=True,
    ),
    DemoStory(
        user("Kenji Tanaka"),
        "My first 38 paying users",
        "Posting a short build log every week brought the first users; a public roadmap kept them.",
        "1150.00",
        anonymous=False,
        publish=False,
    ),
)


# --------------------------------------------------------------------------- posts


@dataclass(frozen=True)
class DemoReply:
    author: str
    content: str
    reply_to: int | None = None  # index of an earlier reply of the same post


@dataclass(frozen=True)
class DemoPost:
    author: str
    content: str
    visibility: Literal["public", "members"] = "public"
    pinned: bool = False
    replies: tuple[DemoReply, ...] = ()
    likers: tuple[str, ...] = ()
    reported_by: str | None = None


POSTS: tuple[DemoPost, ...] = (
    DemoPost(
        "Rachel Kim",
        "Welcome to the community! Introduce yourself below: your track, your current goal, "
        "and one thing you want to get done this week. Submit your revenue proofs from the "
        "Goals page and we review them the same day.",
        pinned=True,
        replies=(
            DemoReply("Sofia Rossi", "Hi all! Agency track, aiming for my first $1k this month."),
            DemoReply("Rachel Kim", "Welcome Sofia! Start with the cold email pack.", 0),
            DemoReply("Noah Williams", "SaaS track here, building a tiny invoicing tool."),
        ),
        likers=("Ada Lovelace", "Maya Patel", "Kenji Tanaka", "Sofia Rossi", "Noah Williams"),
    ),
    DemoPost(
        "Ada Lovelace",
        "Just closed my first $1,200 website retainer! Six calls from forty cold emails. "
        "Thank you all for the feedback on my proposal last week.",
        replies=(
            DemoReply("Marcus Reed", "Huge! What made them say yes on the call?"),
            DemoReply("Ada Lovelace", "A single price and a start date. No options.", 0),
            DemoReply("Jonas Weber", "Congrats Ada, that is the push I needed."),
        ),
        likers=(
            "Maya Patel",
            "Jonas Weber",
            "Aisha Bello",
            "Kenji Tanaka",
            "Priya Sharma",
            "Rachel Kim",
            "Marcus Reed",
        ),
    ),
    DemoPost(
        "Kenji Tanaka",
        "Crossed $450 MRR on my scheduling tool. Next milestone: the first $1k month.",
        likers=("Priya Sharma", "Emma Johansson", "Fatima Zahra"),
    ),
    DemoPost(
        "Marcus Reed",
        "Office hours on Thursday, 18:00 UTC. Bring your cold email drafts and your pricing "
        "page; we will rewrite two of each live.",
        visibility="members",
        likers=("Ada Lovelace", "Diego Alvarez", "Lucas Moreau"),
    ),
    DemoPost(
        "Maya Patel",
        "Question: how do you price a landing page for a local dentist? I was going to say "
        "$400 but it feels low.",
        replies=(
            DemoReply("Aisha Bello", "Price the outcome, not the page. $900 with copywriting."),
            DemoReply("Maya Patel", "That makes sense, thank you!", 0),
            DemoReply("Rachel Kim", "The pricing guide in Resources has a worksheet for this."),
        ),
        likers=("Aisha Bello", "Lucas Moreau"),
    ),
    DemoPost(
        "Priya Sharma",
        "Churn lesson of the month: an onboarding email on day two cut cancellations "
        "in the first week by half.",
        likers=("Kenji Tanaka", "Noah Williams", "Emma Johansson", "Rachel Kim"),
    ),
    DemoPost(
        "Jonas Weber",
        "Sharing the outreach sequence that got me three replies out of twenty. Members only "
        "because it names real prospects.",
        visibility="members",
        likers=("Diego Alvarez",),
    ),
    DemoPost(
        "Emma Johansson",
        "Week two of building in public: login, billing and a waitlist of 60 people.",
        replies=(DemoReply("Fatima Zahra", "Following along! Which billing provider?"),),
        likers=("Fatima Zahra", "Kenji Tanaka"),
    ),
    DemoPost(
        "Aisha Bello",
        "Cut my proposal from two pages to one and my close rate doubled.",
        likers=("Maya Patel", "Ada Lovelace", "Marcus Reed"),
    ),
    DemoPost(
        "Diego Alvarez",
        "Anyone using Notion for client onboarding? Looking for a template.",
        replies=(DemoReply("Lucas Moreau", "The onboarding checklist in Resources is great."),),
    ),
    DemoPost(
        "Fatima Zahra",
        "Launched on Product Hunt today! Any upvotes and feedback are welcome.",
        visibility="members",
        likers=("Emma Johansson", "Priya Sharma", "Noah Williams"),
    ),
    DemoPost(
        "Lucas Moreau",
        "DM me for cheap SEO packages, 50% off this week only!!!",
        reported_by="Maya Patel",
    ),
)


# --------------------------------------------------------------------------- resources


@dataclass(frozen=True)
class DemoLink:
    entity_type: Literal["community_post", "course_video", "course", "conversation"]
    entity_key: str  # a post index (community_post) or a name turned into a stable id
    timestamp_seconds: int | None = None
    label: str | None = None


@dataclass(frozen=True)
class DemoResource:
    title: str
    description: str
    type: str
    category: str
    access: Literal["free", "members"]
    file_name: str
    format: str
    mime_type: str
    file_size: int
    difficulty: str | None
    tags: tuple[str, ...]
    publish: bool = True
    featured: bool = False
    links: tuple[DemoLink, ...] = ()
    downloaded_by: tuple[str, ...] = ()
    ratings: tuple[tuple[str, int], ...] = ()

    @property
    def file_url(self) -> str:
        return f"https://files.example.com/resources/{self.file_name}"

    def body(self) -> dict[str, object]:
        """The `POST /resources` body."""
        return {
            "title": self.title,
            "description": self.description,
            "type": self.type,
            "category": self.category,
            "access": self.access,
            "file_url": self.file_url,
            "file_size": self.file_size,
            "format": self.format,
            "mime_type": self.mime_type,
            "difficulty": self.difficulty,
            "tags": list(self.tags),
            "publish": self.publish,
        }


RESOURCES: tuple[DemoResource, ...] = (
    DemoResource(
        "Cold Email Template Pack",
        "Twelve cold email templates with subject lines that get replies.",
        "template",
        "client-acquisition",
        "free",
        "cold-email-pack.pdf",
        "pdf",
        "application/pdf",
        482_000,
        "beginner",
        ("email", "outreach"),
        featured=True,
        links=(
            DemoLink("course_video", "cold-outreach-101", 95, "Template used at 1:35"),
            DemoLink("course", "client-acquisition"),
        ),
        downloaded_by=("Ada Lovelace", "Maya Patel", "Jonas Weber", "Sofia Rossi", "Lucas Moreau"),
        ratings=(("Ada Lovelace", 5), ("Maya Patel", 4), ("Jonas Weber", 5)),
    ),
    DemoResource(
        "Pricing Your First Website Project",
        "A worksheet and a guide to pricing by outcome instead of by page.",
        "guide",
        "business",
        "members",
        "pricing-guide.pdf",
        "pdf",
        "application/pdf",
        1_250_000,
        "intermediate",
        ("pricing", "proposals"),
        links=(DemoLink("community_post", "4", None, "Pricing worksheet"),),
        downloaded_by=("Maya Patel", "Aisha Bello", "Diego Alvarez"),
        ratings=(("Aisha Bello", 5),),
    ),
    DemoResource(
        "Client Onboarding Checklist",
        "Everything to collect and set up in a new client's first week.",
        "checklist",
        "business",
        "free",
        "onboarding-checklist.pdf",
        "pdf",
        "application/pdf",
        96_000,
        "beginner",
        ("onboarding", "clients"),
        downloaded_by=("Diego Alvarez", "Lucas Moreau"),
        ratings=(("Diego Alvarez", 4),),
    ),
    DemoResource(
        "SaaS Metrics Spreadsheet",
        "Track MRR, churn and lifetime value month by month.",
        "spreadsheet",
        "business",
        "members",
        "saas-metrics.xlsx",
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        58_000,
        "intermediate",
        ("mrr", "churn", "metrics"),
        downloaded_by=("Kenji Tanaka", "Priya Sharma", "Emma Johansson", "Noah Williams"),
        ratings=(("Kenji Tanaka", 5), ("Priya Sharma", 4)),
    ),
    DemoResource(
        "Landing Page Teardown",
        "Twenty minutes rewriting a real landing page, above the fold first.",
        "video",
        "marketing",
        "free",
        "landing-page-teardown.mp4",
        "mp4",
        "video/mp4",
        210_000_000,
        "beginner",
        ("copywriting", "landing-pages"),
        links=(DemoLink("course_video", "landing-pages-201", 0, "Full teardown"),),
        downloaded_by=("Ada Lovelace", "Fatima Zahra"),
    ),
    DemoResource(
        "Stripe Subscription Starter",
        "A minimal subscription backend with webhooks and a customer portal.",
        "code",
        "development",
        "members",
        "stripe-starter.zip",
        "zip",
        "application/zip",
        340_000,
        "advanced",
        ("stripe", "billing"),
        downloaded_by=("Emma Johansson", "Fatima Zahra"),
        ratings=(("Emma Johansson", 3),),
    ),
    DemoResource(
        "One-Page Proposal Template",
        "The proposal format that closes: problem, outcome, price, start date.",
        "template",
        "templates",
        "free",
        "proposal-template.docx",
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        41_000,
        "beginner",
        ("proposals",),
        downloaded_by=("Ada Lovelace", "Aisha Bello"),
        ratings=(("Ada Lovelace", 5),),
    ),
    DemoResource(
        "Launch Week Marketing Plan",
        "Day-by-day plan for a product launch (draft, not yet published).",
        "pdf",
        "marketing",
        "free",
        "launch-week.pdf",
        "pdf",
        "application/pdf",
        220_000,
        "intermediate",
        ("launch",),
        publish=False,
    ),
)


# --------------------------------------------------------------------------- learning


@dataclass(frozen=True)
class LearningEvent:
    """An event of the course platform (SPEC §7), with a stable id."""

    type: str
    user_id: uuid.UUID
    event_id: uuid.UUID
    occurred_at: dt.datetime
    data: dict[str, object] = field(default_factory=dict)


# Learn rate = 60 * watched / session minutes per hour: these three are fast learners.
_FOCUS = {"Ada Lovelace": 0.8, "Kenji Tanaka": 0.75, "Priya Sharma": 0.85}


def _learning_event(
    student: DemoUser, kind: str, index: int, occurred_at: dt.datetime, **data: object
) -> LearningEvent:
    return LearningEvent(
        type=kind,
        user_id=student.id,
        event_id=demo_id("event", f"{student.name}:{kind}:{index}"),
        occurred_at=occurred_at,
        data={"user_id": str(student.id), **data},
    )


def learning_events(now: dt.datetime) -> list[LearningEvent]:
    """Videos watched and tasks assigned/completed over the last two weeks.

    Deterministic for a given `now` (and the ids do not depend on `now` at all).
    """
    events: list[LearningEvent] = []
    for student in STUDENTS:
        rng = random.Random(student.name)
        focus = _FOCUS.get(student.name, rng.uniform(0.3, 0.6))
        for index in range(rng.randint(3, 8)):
            session = rng.randint(15, 60) * 60
            events.append(
                _learning_event(
                    student,
                    "learning.video.watched",
                    index,
                    now - dt.timedelta(days=rng.uniform(0.1, 13.5)),
                    video_id=str(demo_id("video", f"lesson-{rng.randint(1, 24)}")),
                    watched_seconds=int(session * focus),
                    session_seconds=session,
                )
            )
        assigned = 6
        completed = rng.randint(2, assigned)
        for index in range(assigned):
            task_id = str(demo_id("task", f"task-{index + 1}"))
            assigned_at = now - dt.timedelta(days=13.0 - 2 * index)
            events.append(
                _learning_event(
                    student, "learning.task.assigned", index, assigned_at, task_id=task_id
                )
            )
            if index < completed:
                done_at = min(assigned_at + dt.timedelta(hours=rng.uniform(4, 36)), now)
                events.append(
                    _learning_event(
                        student, "learning.task.completed", index, done_at, task_id=task_id
                    )
                )
    events.sort(key=lambda event: event.occurred_at)
    return events
