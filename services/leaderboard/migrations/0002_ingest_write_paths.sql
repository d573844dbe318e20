-- Cheaper writes on the ingest path.

-- A student's and a day's counters as one composite: `json_to_recordset` turns
-- the nested `counters` object of each row into this type in one pass, where
-- `->>` per counter would parse the object again for every counter.
CREATE TYPE counters AS (
    posts            integer,
    replies          integer,
    likes_given      integer,
    submissions      integer,
    approvals        integer,
    videos_watched   integer,
    tasks_assigned   integer,
    tasks_completed  integer,
    completed_goals  integer,
    watched_seconds  bigint,
    session_seconds  bigint
);

-- Ids are pruned by age only; they are recorded in time order, so a BRIN
-- index finds the old ones, and costs next to nothing per recorded id (the
-- B-tree cost an index insert per event).
DROP INDEX applied_events_applied_at;
CREATE INDEX applied_events_applied_at ON applied_events USING brin (applied_at);
