-- Idempotency keys of the creating POSTs (SPEC §3, "Retries are safe"): the
-- first answer to (caller, route, key), written in the transaction of the
-- write it answers, so a committed write always has its key and a failed one
-- leaves none (applied into every service schema, like the outbox).
CREATE TABLE idempotency_keys (
    user_id     uuid        NOT NULL,
    route       text        NOT NULL,  -- method and path, e.g. 'POST /posts/<id>/replies'
    key         text        NOT NULL,
    fingerprint bytea       NOT NULL,  -- sha256 of the request body, canonical JSON
    status_code smallint    NOT NULL,
    body        bytea       NOT NULL,  -- the response body, byte for byte
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, route, key)
);

-- The periodic clean-up deletes keys older than 24 hours.
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
