-- Posts, replies, likes and reports of the community feed.
--
-- Rows are soft-deleted (`deleted_at`): a removed post or reply disappears from
-- every read but stays for moderation history. Every list the API serves has a
-- partial index restricted to live rows, in the exact order the list is read
-- (pinned first, then newest; keyset on (is_pinned, created_at, id)).

CREATE TABLE posts (
    id            uuid        PRIMARY KEY,
    author_id     uuid        NOT NULL,
    author_name   text        NOT NULL,
    author_role   text        NOT NULL CHECK (author_role IN ('student', 'instructor', 'admin')),
    content       text        NOT NULL CHECK (char_length(content) BETWEEN 1 AND 5000),
    visibility    text        NOT NULL DEFAULT 'public' CHECK (visibility IN ('public', 'members')),
    is_pinned     boolean     NOT NULL DEFAULT false,
    pinned_at     timestamptz,
    pinned_by     uuid,
    likes_count   integer     NOT NULL DEFAULT 0 CHECK (likes_count >= 0),
    replies_count integer     NOT NULL DEFAULT 0 CHECK (replies_count >= 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    edited        boolean     NOT NULL DEFAULT false,
    deleted_at    timestamptz,
    deleted_by    uuid,
    delete_reason text CHECK (delete_reason IN ('author', 'moderator', 'report')),
    -- Full-text search document (`q`); English stemming, kept in step by Postgres.
    search        tsvector    GENERATED ALWAYS AS (to_tsvector('english', content)) STORED
);

-- The feed as members see it (every live post), pinned first then newest.
CREATE INDEX posts_feed ON posts (is_pinned, created_at, id) WHERE deleted_at IS NULL;
-- The feed as guests and non-members see it (public posts only).
CREATE INDEX posts_feed_public ON posts (is_pinned, created_at, id)
    WHERE deleted_at IS NULL AND visibility = 'public';
-- filter=instructors: posts by instructors and admins.
CREATE INDEX posts_feed_instructors ON posts (is_pinned, created_at, id)
    WHERE deleted_at IS NULL AND author_role IN ('instructor', 'admin');
-- filter=mine: one author's posts.
CREATE INDEX posts_by_author ON posts (author_id, is_pinned, created_at, id)
    WHERE deleted_at IS NULL;
-- q: full-text search over live posts.
CREATE INDEX posts_search ON posts USING gin (search) WHERE deleted_at IS NULL;

CREATE TABLE replies (
    id          uuid        PRIMARY KEY,
    post_id     uuid        NOT NULL REFERENCES posts (id),
    reply_to_id uuid        REFERENCES replies (id),
    author_id   uuid        NOT NULL,
    author_name text        NOT NULL,
    author_role text        NOT NULL CHECK (author_role IN ('student', 'instructor', 'admin')),
    content     text        NOT NULL CHECK (char_length(content) BETWEEN 1 AND 5000),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    edited      boolean     NOT NULL DEFAULT false,
    deleted_at  timestamptz,
    deleted_by  uuid
);

-- A post's thread, oldest first.
CREATE INDEX replies_thread ON replies (post_id, created_at, id) WHERE deleted_at IS NULL;
-- Replies pointing at a reply (foreign key checks, thread reconstruction).
CREATE INDEX replies_reply_to ON replies (reply_to_id) WHERE reply_to_id IS NOT NULL;

CREATE TABLE likes (
    post_id    uuid        NOT NULL REFERENCES posts (id),
    user_id    uuid        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- One like per user and post: `likes_count` is exactly the number of rows.
    PRIMARY KEY (post_id, user_id)
);

CREATE TABLE reports (
    id            uuid        PRIMARY KEY,
    post_id       uuid        NOT NULL REFERENCES posts (id),
    reporter_id   uuid        NOT NULL,
    reporter_name text        NOT NULL,
    reason        text        NOT NULL CHECK (reason IN ('spam', 'abuse', 'off_topic', 'other')),
    details       text        CHECK (char_length(details) BETWEEN 1 AND 1000),
    status        text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    action        text        CHECK (action IN ('dismiss', 'remove')),
    resolved_by   uuid,
    resolved_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'open') = (resolved_at IS NULL)),
    CHECK ((status = 'open') = (action IS NULL))
);

-- One open report per user and post; once resolved, the user may report again.
CREATE UNIQUE INDEX reports_one_open_per_reporter ON reports (post_id, reporter_id)
    WHERE status = 'open';
-- The moderation queue: open reports, oldest first.
CREATE INDEX reports_open_queue ON reports (created_at, id) WHERE status = 'open';
-- Resolved reports, most recently resolved first.
CREATE INDEX reports_resolved ON reports (resolved_at, id) WHERE status = 'resolved';
