-- The resource library: resources, their links to other platform entities,
-- each user's (or guest email's) interaction with a resource, and per-day
-- download buckets for the 30-day popularity window.

-- Full-text document of a resource: title weighs most, then tags, then the
-- description. A function so the generated column below can use it; it only
-- calls immutable text functions with a fixed configuration, so declaring it
-- IMMUTABLE is truthful (array_to_string is merely STABLE because of generic
-- element output, which is fixed for text[]).
CREATE FUNCTION resource_search_document(title text, description text, tags text[])
RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A')
        || setweight(to_tsvector('english'::regconfig, coalesce(array_to_string(tags, ' '), '')), 'B')
        || setweight(to_tsvector('english'::regconfig, coalesce(description, '')), 'C')
$$;

CREATE TABLE resources (
    id               uuid        PRIMARY KEY,
    title            text        NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description      text,
    type             text        NOT NULL CHECK (type IN ('template', 'guide', 'checklist', 'pdf',
                                                          'video', 'tool', 'spreadsheet', 'code')),
    category         text        NOT NULL CHECK (category IN ('client-acquisition', 'development',
                                                              'business', 'templates', 'marketing')),
    access           text        NOT NULL CHECK (access IN ('free', 'members')),
    file_url         text        NOT NULL,
    file_size        bigint      CHECK (file_size >= 0),
    format           text,
    mime_type        text,
    difficulty       text        CHECK (difficulty IN ('beginner', 'intermediate', 'advanced')),
    tags             text[]      NOT NULL DEFAULT '{}',
    source_type      text,
    source_id        text,
    is_featured      boolean     NOT NULL DEFAULT false,
    created_by       uuid        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    published_at     timestamptz,             -- null: a draft
    deleted_at       timestamptz,             -- soft delete
    -- Counters, changed only by relative updates inside the transaction that
    -- records the download or rating, under the row lock: they never drift.
    download_count   bigint      NOT NULL DEFAULT 0 CHECK (download_count >= 0),
    recent_downloads bigint      NOT NULL DEFAULT 0 CHECK (recent_downloads >= 0),
    rating_sum       bigint      NOT NULL DEFAULT 0 CHECK (rating_sum >= 0),
    rating_count     integer     NOT NULL DEFAULT 0 CHECK (rating_count >= 0),
    -- Exact average for the rating sort and its cursor (null while unrated, so
    -- unrated resources sort last).
    rating_avg       numeric GENERATED ALWAYS AS (
                         CASE WHEN rating_count > 0 THEN rating_sum::numeric / rating_count END
                     ) STORED,
    search           tsvector GENERATED ALWAYS AS (
                         resource_search_document(title, description, tags)
                     ) STORED
);

-- One index per sort of the public listing, over published live rows only.
CREATE INDEX resources_newest ON resources (published_at DESC, id DESC)
    WHERE deleted_at IS NULL AND published_at IS NOT NULL;
CREATE INDEX resources_downloads ON resources (download_count DESC, id DESC)
    WHERE deleted_at IS NULL AND published_at IS NOT NULL;
CREATE INDEX resources_popular ON resources (recent_downloads DESC, download_count DESC, id DESC)
    WHERE deleted_at IS NULL AND published_at IS NOT NULL;
CREATE INDEX resources_rating ON resources (rating_avg DESC NULLS LAST, rating_count DESC, id DESC)
    WHERE deleted_at IS NULL AND published_at IS NOT NULL;
-- Browsing one category (the library's tabs), newest first.
CREATE INDEX resources_category_newest ON resources (category, published_at DESC, id DESC)
    WHERE deleted_at IS NULL AND published_at IS NOT NULL;
-- Filters that cut across sorts.
CREATE INDEX resources_tags ON resources USING gin (tags)
    WHERE deleted_at IS NULL AND published_at IS NOT NULL;
CREATE INDEX resources_search ON resources USING gin (search)
    WHERE deleted_at IS NULL AND published_at IS NOT NULL;
-- Moderators' list of drafts, newest first.
CREATE INDEX resources_drafts ON resources (created_at DESC, id DESC)
    WHERE deleted_at IS NULL AND published_at IS NULL;

-- A resource attached to something elsewhere on the platform (a post, a
-- course video at a timestamp, a course, a conversation).
CREATE TABLE links (
    id                uuid        PRIMARY KEY,
    resource_id       uuid        NOT NULL REFERENCES resources (id),
    entity_type       text        NOT NULL CHECK (entity_type IN ('community_post', 'course_video',
                                                                  'course', 'conversation')),
    entity_id         uuid        NOT NULL,
    timestamp_seconds integer     CHECK (timestamp_seconds >= 0),
    label             text,
    display_order     integer     NOT NULL DEFAULT 0,
    created_by        uuid        NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (resource_id, entity_type, entity_id)
);

-- The linked listing of one entity, in display order.
CREATE INDEX links_by_entity
    ON links (entity_type, entity_id, timestamp_seconds ASC NULLS LAST, display_order ASC, id ASC);

-- One record per (resource, user) or (resource, guest email): how often that
-- downloader downloaded it, and their rating. A guest's email is stored here
-- and never shown to anyone.
CREATE TABLE interactions (
    id                  uuid        PRIMARY KEY,
    resource_id         uuid        NOT NULL REFERENCES resources (id),
    user_id             uuid,
    guest_email         text,
    download_count      integer     NOT NULL DEFAULT 0 CHECK (download_count >= 0),
    first_downloaded_at timestamptz,
    last_downloaded_at  timestamptz,
    rating              smallint    CHECK (rating BETWEEN 1 AND 5),
    review              text,
    rated_at            timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CHECK ((user_id IS NULL) <> (guest_email IS NULL)),
    CHECK (rating IS NULL OR user_id IS NOT NULL)
);

-- Upsert targets, and the caller's `my_rating` lookup when listing.
CREATE UNIQUE INDEX interactions_user ON interactions (resource_id, user_id)
    WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX interactions_guest ON interactions (resource_id, guest_email)
    WHERE guest_email IS NOT NULL;

-- Downloads per resource per UTC day. `resources.recent_downloads` is the sum
-- of the buckets still inside the 30-day window; a periodic job subtracts a
-- bucket once its day leaves the window and marks it expired.
CREATE TABLE download_days (
    resource_id uuid    NOT NULL REFERENCES resources (id),
    day         date    NOT NULL,
    downloads   integer NOT NULL CHECK (downloads >= 0),
    expired     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (resource_id, day)
);

-- The expiry job scans only buckets not yet expired, oldest first.
CREATE INDEX download_days_live ON download_days (day) WHERE NOT expired;
