-- Teams and sign-off, one customer across channels, advocates. Same portable types as 0001.

-- Round-robin within each team: who got the last conversation.
CREATE TABLE team_cursors (
    tenant TEXT NOT NULL,
    team TEXT NOT NULL,
    last_agent TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, team)
);

-- Everyone working on a conversation besides (and including) its assignee.
-- role: assignee, participant, expert.
CREATE TABLE participants (
    tenant TEXT NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    agent TEXT NOT NULL,
    role TEXT NOT NULL,
    added_at BIGINT NOT NULL,
    added_by TEXT NOT NULL,
    PRIMARY KEY (conversation_id, agent)
);

-- An agent asking a knowledge expert; the answer comes back as a draft.
CREATE TABLE expert_requests (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    asked_by TEXT NOT NULL,
    expert TEXT NOT NULL,
    topic TEXT,
    question TEXT NOT NULL,
    asked_at BIGINT NOT NULL,
    answer TEXT,
    answered_at BIGINT,
    draft_id TEXT
);
CREATE INDEX expert_requests_expert ON expert_requests (tenant, expert, answered_at);

-- Sign-off: one row per tier approved, in order. A draft is sendable when every tier its
-- policy requires has an approval.
CREATE TABLE draft_approvals (
    draft_id TEXT NOT NULL REFERENCES drafts (id),
    tier BIGINT NOT NULL,
    role TEXT NOT NULL,
    approver TEXT NOT NULL,
    approved_at BIGINT NOT NULL,
    PRIMARY KEY (draft_id, tier)
);
-- Who wrote a draft's current text when an agent edited it (new agents' drafts need sign-off).
ALTER TABLE drafts ADD COLUMN edited_by TEXT;

-- Contacts a platform verified (a WhatsApp number, an SMS sender): the same verified contact on
-- two channels is one customer.
CREATE TABLE customer_contacts (
    tenant TEXT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    first_seen_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, kind, value)
);

-- An agent's merge of two customers, kept so that it can be undone exactly: the identities
-- that moved (JSON list of [channel, author_id]).
CREATE TABLE customer_merges (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    from_customer TEXT NOT NULL REFERENCES customers (id),
    into_customer TEXT NOT NULL REFERENCES customers (id),
    identities TEXT NOT NULL,
    merged_at BIGINT NOT NULL,
    merged_by TEXT NOT NULL,
    undone_at BIGINT,
    undone_by TEXT
);

-- Set when a customer praised the brand more than once: worth a thank-you and a note.
ALTER TABLE customers ADD COLUMN advocate_since BIGINT;

-- Author history is read per customer (all their channels), not per channel identity.
CREATE INDEX messages_customer ON messages (tenant, customer_id);
