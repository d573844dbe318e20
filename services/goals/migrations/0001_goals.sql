-- The goals service: tracks and goals (reference data), students' goal state,
-- the review queue (goal requests and revenue submissions), completed goals and
-- success stories.
--
-- Money is numeric(18,2): exact, two decimals, never float.

CREATE TABLE tracks (
    id       uuid PRIMARY KEY,
    slug     text NOT NULL UNIQUE,
    name     text NOT NULL,
    metric   text NOT NULL CHECK (metric IN ('total_revenue', 'mrr')),
    position integer NOT NULL UNIQUE
);

CREATE TABLE goals (
    id       uuid PRIMARY KEY,
    slug     text NOT NULL UNIQUE,
    track_id uuid NOT NULL REFERENCES tracks (id),
    name     text NOT NULL,
    target   numeric(18,2) NOT NULL CHECK (target > 0),
    position integer NOT NULL,
    UNIQUE (track_id, position)
);

-- Ids are uuid5(uuid5(NAMESPACE_DNS, 'goals.community-live'), '<kind>:<slug>'), so
-- they are the same in every deployment (checked by tests/unit/test_goals_catalog.py).
INSERT INTO tracks (id, slug, name, metric, position) VALUES
    ('2c708c1a-a608-5f2f-bc09-3c6bfe8754ce', 'agency', 'Agency', 'total_revenue', 1),
    ('00eb49b4-8944-5023-af29-cc71d79b9081', 'saas', 'SaaS', 'mrr', 2);

INSERT INTO goals (id, slug, track_id, name, target, position) VALUES
    ('ab6dcbe6-1c24-5bd5-90cb-66015d850da8', 'agency-1k',
     '2c708c1a-a608-5f2f-bc09-3c6bfe8754ce', 'Agency $1k', 1000, 1),
    ('4514683a-83c4-5ec5-8baf-cd0c4cc3d693', 'agency-3k',
     '2c708c1a-a608-5f2f-bc09-3c6bfe8754ce', 'Agency $3k', 3000, 2),
    ('98580a55-a7b8-57bf-8d72-c634f00604d9', 'agency-10k',
     '2c708c1a-a608-5f2f-bc09-3c6bfe8754ce', 'Agency $10k', 10000, 3),
    ('8cc91f21-8453-5bf6-b7c0-54df55133ac8', 'agency-25k',
     '2c708c1a-a608-5f2f-bc09-3c6bfe8754ce', 'Agency $25k', 25000, 4),
    ('4c8947b2-9b02-57de-9e8d-264c2ce08237', 'saas-1k-mrr',
     '00eb49b4-8944-5023-af29-cc71d79b9081', 'SaaS $1k MRR', 1000, 1),
    ('83b6f196-e697-5db8-8493-f8f48bf5d269', 'saas-5k-mrr',
     '00eb49b4-8944-5023-af29-cc71d79b9081', 'SaaS $5k MRR', 5000, 2),
    ('3cee985c-8ba9-5d0a-80c2-8f7dc901db60', 'saas-20k-mrr',
     '00eb49b4-8944-5023-af29-cc71d79b9081', 'SaaS $20k MRR', 20000, 3);

-- Numbers behind the "Member A", "Member B", ... pseudonyms of anonymous story
-- authors; a number is drawn once per author and never changes.
CREATE SEQUENCE pseudonym_numbers;

-- One row per student, created on first use from the token (id, name). The goal
-- in effect is `current_goal_id` with `goal_status` active or completed; a goal
-- request waiting for review lives in `reviews` and changes nothing here until
-- it is approved.
CREATE TABLE students (
    id                   uuid PRIMARY KEY,
    name                 text NOT NULL,
    current_goal_id      uuid REFERENCES goals (id),
    goal_status          text NOT NULL DEFAULT 'none'
                         CHECK (goal_status IN ('none', 'active', 'completed')),
    goal_started_at      timestamptz,
    total_revenue_earned numeric(18,2) NOT NULL DEFAULT 0 CHECK (total_revenue_earned >= 0),
    current_mrr          numeric(18,2) NOT NULL DEFAULT 0 CHECK (current_mrr >= 0),
    last_verified_amount numeric(18,2),
    pseudonym_no         bigint UNIQUE,
    created_at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK ((goal_status = 'none') = (current_goal_id IS NULL)),
    CHECK ((current_goal_id IS NULL) = (goal_started_at IS NULL))
);

-- The review queue: goal requests and revenue submissions in one table, so the
-- queue is one ordered index scan and one student has at most one pending review
-- of any kind (enforced by the partial unique index, race-free).
CREATE TABLE reviews (
    id               uuid PRIMARY KEY,
    kind             text NOT NULL CHECK (kind IN ('goal_request', 'revenue_submission')),
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'approved', 'rejected')),
    student_id       uuid NOT NULL REFERENCES students (id),
    goal_id          uuid NOT NULL REFERENCES goals (id),
    amount           numeric(18,2) CHECK (amount > 0),
    proof_url        text,
    note             text,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    reviewed_by      uuid,
    reviewed_at      timestamptz,
    rejection_reason text,
    CHECK ((kind = 'revenue_submission') = (amount IS NOT NULL)),
    CHECK ((kind = 'revenue_submission') = (proof_url IS NOT NULL)),
    CHECK ((status = 'pending') = (reviewed_at IS NULL)),
    CHECK ((status = 'pending') = (reviewed_by IS NULL)),
    CHECK ((status = 'rejected') = (rejection_reason IS NOT NULL))
);

CREATE UNIQUE INDEX reviews_one_pending_per_student ON reviews (student_id)
    WHERE status = 'pending';
-- GET /goals/reviews?status=: oldest first, keyset on (created_at, id).
CREATE INDEX reviews_queue ON reviews (status, created_at, id);
-- GET /goals/me/submissions and the latest submission of a profile: newest first.
CREATE INDEX reviews_by_student_kind ON reviews (student_id, kind, created_at DESC, id DESC);
-- GET /goals/students/{id}: the whole history, newest first.
CREATE INDEX reviews_by_student ON reviews (student_id, created_at DESC, id DESC);

CREATE TABLE completed_goals (
    student_id       uuid NOT NULL REFERENCES students (id),
    goal_id          uuid NOT NULL REFERENCES goals (id),
    completed_at     timestamptz NOT NULL,
    days_to_complete integer NOT NULL CHECK (days_to_complete >= 0),
    amount           numeric(18,2) NOT NULL,
    PRIMARY KEY (student_id, goal_id)
);

CREATE TABLE stories (
    id              uuid PRIMARY KEY,
    author_id       uuid NOT NULL REFERENCES students (id),
    title           text NOT NULL,
    story           text NOT NULL,
    earnings_amount numeric(18,2) CHECK (earnings_amount > 0),
    anonymous       boolean NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'published')),
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    published_at    timestamptz,
    published_by    uuid,
    CHECK ((status = 'published') = (published_at IS NOT NULL))
);

-- GET /goals/stories: published, newest first.
CREATE INDEX stories_published ON stories (published_at DESC, id DESC) WHERE status = 'published';
-- GET /goals/stories?status=pending (moderators): oldest first.
CREATE INDEX stories_pending ON stories (created_at, id) WHERE status = 'pending';
