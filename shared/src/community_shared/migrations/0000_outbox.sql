-- The transactional outbox of this service's schema (applied by the shared
-- migrations runner into every service schema before the service's own files).
CREATE TABLE outbox (
    seq          bigserial PRIMARY KEY,
    id           uuid        NOT NULL UNIQUE,
    subject      text        NOT NULL,
    aggregate    text        NOT NULL,
    payload      bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    attempts     integer     NOT NULL DEFAULT 0
);

-- The relay only ever scans what is still pending.
CREATE INDEX outbox_pending ON outbox (seq) WHERE published_at IS NULL;
-- Housekeeping deletes old published rows.
CREATE INDEX outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL;
