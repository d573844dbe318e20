-- Web Push subscriptions, preferences, the VAPID key and the delivery log (SPEC §12).

CREATE TABLE push_subscriptions (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL,
    -- The role and membership of the token that registered it: who may be pushed what
    -- (review.requested goes to instructors and admins; members-only events to members).
    role text NOT NULL CHECK (role IN ('student', 'instructor', 'admin')),
    member boolean NOT NULL,
    endpoint text NOT NULL UNIQUE,
    p256dh text NOT NULL,
    auth text NOT NULL,
    user_agent text,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz
);
-- A user's subscriptions, oldest first (GET, keyset paging) and the recipients of a user event.
CREATE INDEX push_subscriptions_by_user ON push_subscriptions (user_id, created_at, id);
-- The recipients of review.requested.
CREATE INDEX push_subscriptions_moderators ON push_subscriptions (user_id)
    WHERE role IN ('instructor', 'admin');

-- Only the choices a user made; the defaults live in the code (rules.PUSH_DEFAULTS).
CREATE TABLE preferences (
    user_id uuid PRIMARY KEY,
    push jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The development VAPID key, generated once when VAPID_PRIVATE_KEY is unset, so that every
-- instance (and every restart) signs with the key the browsers subscribed with.
CREATE TABLE vapid_key (
    id smallint PRIMARY KEY CHECK (id = 1),
    private_key text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One row per (event, subscription): the primary key is what makes a push at most once
-- across restarts, redeliveries and instances. state: pending (due at next_attempt_at),
-- sending (claimed by an instance until lease_until), sent, failed (given up or refused),
-- unknown (its sender died mid-request: not sent again, the push may have gone out).
CREATE TABLE deliveries (
    event_key text NOT NULL,
    subscription_id uuid NOT NULL REFERENCES push_subscriptions (id) ON DELETE CASCADE,
    event_type text NOT NULL,
    payload bytea NOT NULL,
    urgency text NOT NULL,
    state text NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'unknown')),
    attempts integer NOT NULL DEFAULT 0,
    first_attempt_at timestamptz,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_key, subscription_id)
);
-- The sender's queue: due pending rows.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
-- Claims whose sender died.
CREATE INDEX deliveries_sending ON deliveries (lease_until) WHERE state = 'sending';
-- Pruning of finished rows.
CREATE INDEX deliveries_created ON deliveries (created_at);
CREATE INDEX deliveries_subscription ON deliveries (subscription_id);
