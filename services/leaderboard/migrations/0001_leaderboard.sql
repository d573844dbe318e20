-- The leaderboard's statistics: the source of truth the Redis boards are built from.
-- Everything except `privacy` is derived from events and can be rebuilt by replaying them.

-- One row per user seen in an event; all-time totals and the fields the boards need.
CREATE TABLE students (
    user_id          uuid PRIMARY KEY,
    name             text,
    name_at          timestamptz,
    role             text        NOT NULL DEFAULT 'student',
    track            text,
    goal_slug        text,
    goal_name        text,
    total_revenue    numeric(16, 2) NOT NULL DEFAULT 0,
    current_mrr      numeric(16, 2) NOT NULL DEFAULT 0,
    earned           numeric(16, 2) GENERATED ALWAYS AS (
                         CASE track WHEN 'agency' THEN total_revenue
                                    WHEN 'saas' THEN current_mrr
                                    ELSE 0 END) STORED,
    earned_at        timestamptz,
    posts            integer NOT NULL DEFAULT 0,
    replies          integer NOT NULL DEFAULT 0,
    likes_given      integer NOT NULL DEFAULT 0,
    submissions      integer NOT NULL DEFAULT 0,
    approvals        integer NOT NULL DEFAULT 0,
    videos_watched   integer NOT NULL DEFAULT 0,
    tasks_assigned   integer NOT NULL DEFAULT 0,
    tasks_completed  integer NOT NULL DEFAULT 0,
    completed_goals  integer NOT NULL DEFAULT 0,
    watched_seconds  bigint  NOT NULL DEFAULT 0,
    session_seconds  bigint  NOT NULL DEFAULT 0,
    days_active      integer NOT NULL DEFAULT 0,
    first_event_day  date,
    last_event_day   date,
    last_active_day  date,
    streak_start     date,
    streak_end       date,
    reached_at       timestamptz
) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.05);
-- Rows are rewritten on nearly every event: free room on each page lets most
-- updates stay on the page (HOT), and frequent vacuuming keeps the table small.

-- top-performer: the top earners of a track.
CREATE INDEX students_top_earners ON students (track, earned DESC, earned_at, user_id)
    WHERE earned > 0 AND role = 'student';
-- GET /leaderboard?sort=name
CREATE INDEX students_by_name ON students (lower(coalesce(name, 'Student')), user_id)
    WHERE role = 'student' AND first_event_day IS NOT NULL;
-- Deliberately no index on the day columns (last_active_day, streak_end...): they
-- change with most events, and an unindexed change keeps the update on its page
-- (HOT). The community stats scan the table once a second at most; the roll-over
-- finds students through daily_stats_day and badges.

-- Per student per UTC day: what the sliding 30- and 7-day windows sum over.
CREATE TABLE daily_stats (
    user_id          uuid    NOT NULL,
    day              date    NOT NULL,
    posts            integer NOT NULL DEFAULT 0,
    replies          integer NOT NULL DEFAULT 0,
    likes_given      integer NOT NULL DEFAULT 0,
    submissions      integer NOT NULL DEFAULT 0,
    approvals        integer NOT NULL DEFAULT 0,
    videos_watched   integer NOT NULL DEFAULT 0,
    tasks_assigned   integer NOT NULL DEFAULT 0,
    tasks_completed  integer NOT NULL DEFAULT 0,
    completed_goals  integer NOT NULL DEFAULT 0,
    watched_seconds  bigint  NOT NULL DEFAULT 0,
    session_seconds  bigint  NOT NULL DEFAULT 0,
    revenue_delta    numeric(16, 2) NOT NULL DEFAULT 0,
    mrr_delta        numeric(16, 2) NOT NULL DEFAULT 0,
    active           boolean NOT NULL DEFAULT false,
    PRIMARY KEY (user_id, day)
) WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.05);
-- The roll-over finds who had something on the days leaving a window.
CREATE INDEX daily_stats_day ON daily_stats (day);

-- Things counted once and undone by a later event (posts, replies, likes, tasks).
CREATE TABLE counted_items (
    kind     text NOT NULL,
    item_id  text NOT NULL,
    user_id  uuid NOT NULL,
    day      date NOT NULL,
    PRIMARY KEY (kind, item_id)
);

-- Idempotency: the ids of events already applied, written with their effect.
CREATE TABLE applied_events (
    id          uuid PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX applied_events_applied_at ON applied_events (applied_at);

CREATE TABLE badges (
    user_id     uuid        NOT NULL,
    badge       text        NOT NULL,
    awarded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, badge)
);
CREATE INDEX badges_by_badge ON badges (badge, user_id);

-- A student's own choices (not derived from events; a rebuild keeps them).
CREATE TABLE privacy (
    user_id              uuid PRIMARY KEY,
    show_on_leaderboard  boolean     NOT NULL DEFAULT true,
    show_earnings        boolean     NOT NULL DEFAULT true,
    token_name           text,
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX privacy_hidden ON privacy (user_id) WHERE NOT show_on_leaderboard;

-- The community activity ticker.
CREATE TABLE activity (
    id           uuid PRIMARY KEY,
    kind         text        NOT NULL,
    user_id      uuid        NOT NULL,
    occurred_at  timestamptz NOT NULL,
    subject_id   text        NOT NULL,
    amount       numeric(16, 2),
    detail       text,
    ref          jsonb       NOT NULL DEFAULT '{}'::jsonb
);
-- GET /leaderboard/activity: newest first, keyset.
CREATE INDEX activity_recent ON activity (occurred_at DESC, id DESC);
-- A deleted post takes its activity item with it.
CREATE INDEX activity_subject ON activity (subject_id);

-- Small bookkeeping values (the last UTC day the windows were rolled to).
CREATE TABLE meta (
    key    text PRIMARY KEY,
    value  text NOT NULL
);
