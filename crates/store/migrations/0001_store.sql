-- Switchboard's durable store. Written to run unchanged on SQLite and PostgreSQL:
-- TEXT ids made by the host (UUIDv7, time-ordered), BIGINT epoch milliseconds, JSON as TEXT,
-- flags as BIGINT 0/1, no engine-specific types or autoincrement.

-- A person, possibly with identities on several channels (linked only by verified data or an
-- agent's merge, never by guessing).
CREATE TABLE customers (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- When an agent or a policy rule blocked this customer; NULL if not blocked.
    blocked_at BIGINT
);

-- One customer's account on one channel.
CREATE TABLE identities (
    tenant TEXT NOT NULL,
    channel TEXT NOT NULL,
    author_id TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    handle TEXT,
    display_name TEXT,
    first_seen_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, channel, author_id)
);

CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    channel TEXT NOT NULL,
    conversation_key TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    -- open, monitored, ignored, private, closed
    state TEXT NOT NULL,
    team TEXT,
    escalated BIGINT NOT NULL DEFAULT 0,
    incident TEXT,
    -- Set when the conversation was taken private: close the loop publicly afterwards.
    close_publicly TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (tenant, channel, conversation_key)
);

-- A normalised message exactly as the connector produced it (`body`, JSON), with its place in
-- the pipeline. `event_key` is the external id for a new message, and marks edits
-- (`<id>#edit:<time>`) and deletions (`<id>#delete`) apart from it: unique per tenant and
-- channel, so a redelivery is stored once while an edit is not mistaken for one.
CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    channel TEXT NOT NULL,
    connector TEXT NOT NULL,
    external_id TEXT NOT NULL,
    event_key TEXT NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    customer_id TEXT NOT NULL REFERENCES customers (id),
    author_id TEXT NOT NULL,
    body TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    accepted_at BIGINT NOT NULL,
    -- accepted -> done; or held (fail-closed stage failed; retried) -> failed (gave up)
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    -- Stages skipped by a fail-open failure, as a JSON list; '[]' when complete.
    degraded TEXT NOT NULL DEFAULT '[]',
    UNIQUE (tenant, channel, event_key)
);
CREATE INDEX messages_external ON messages (tenant, channel, external_id);
CREATE INDEX messages_pending ON messages (status, next_attempt_at);
CREATE INDEX messages_author ON messages (tenant, channel, author_id);
CREATE INDEX messages_conversation ON messages (conversation_id, received_at);

-- Labels by classifier. `role` is 'live' (acted on) or 'shadow' (recorded only).
CREATE TABLE labels (
    message_id TEXT NOT NULL REFERENCES messages (id),
    role TEXT NOT NULL,
    classifier TEXT NOT NULL,
    name TEXT NOT NULL,
    score DOUBLE PRECISION NOT NULL,
    evidence TEXT NOT NULL
);
CREATE INDEX labels_message ON labels (message_id);

-- What the care policy decided for a message, and which rules fired and why (JSON).
CREATE TABLE decisions (
    message_id TEXT PRIMARY KEY REFERENCES messages (id),
    tenant TEXT NOT NULL,
    actions TEXT NOT NULL,
    fired TEXT NOT NULL,
    -- Shadow classifiers that ran on this message (JSON list), for shadow reports.
    shadows TEXT NOT NULL DEFAULT '[]',
    decided_at BIGINT NOT NULL
);

-- Drafts with their guard findings. status: proposed (waits for an agent), blocked (a guard
-- blocked it), queued (in the outbox), sent, rejected.
CREATE TABLE drafts (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    message_id TEXT NOT NULL REFERENCES messages (id),
    suggester TEXT NOT NULL,
    purpose TEXT NOT NULL,
    text TEXT NOT NULL,
    visibility TEXT NOT NULL,
    confidence DOUBLE PRECISION NOT NULL,
    rationale TEXT NOT NULL,
    length BIGINT,
    length_limit BIGINT NOT NULL,
    findings TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX drafts_message ON drafts (message_id);

-- Replies to send. The idempotency key is stable across retries and restarts, and unique: the
-- same reply is never queued twice. status: pending, sending, sent, dead.
CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    connector TEXT NOT NULL,
    message_id TEXT NOT NULL REFERENCES messages (id),
    draft_id TEXT REFERENCES drafts (id),
    idempotency_key TEXT NOT NULL UNIQUE,
    reply TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    receipt TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX outbox_pending ON outbox (status, next_attempt_at);

-- Every action on the tenant's data, by whom and when.
CREATE TABLE audit (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX audit_tenant ON audit (tenant, at);
