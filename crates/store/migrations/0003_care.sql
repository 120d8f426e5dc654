-- The care workflow: service-level clocks, the out-of-hours reply, resolution and
-- satisfaction surveys. Same portable types as 0001.

-- One row per response target that started: a customer waiting for a real response. `kind`
-- is 'first' (nobody has answered this conversation yet) or 'next'. Due times are NULL when
-- the hours never open again. A clock stops only on a sent reply that counts as a response
-- (not an acknowledgement, an away message or a survey).
CREATE TABLE response_clocks (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    channel TEXT NOT NULL,
    message_id TEXT NOT NULL REFERENCES messages (id),
    kind TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    internal_due_at BIGINT,
    published_due_at BIGINT,
    warned_at BIGINT,
    internal_breached_at BIGINT,
    published_breached_at BIGINT,
    stopped_at BIGINT,
    stopped_by TEXT,
    -- Who owned the conversation when the clock stopped (for reports per agent and team).
    assignee TEXT,
    team TEXT
);
CREATE INDEX response_clocks_open ON response_clocks (tenant, stopped_at);
CREATE INDEX response_clocks_conversation ON response_clocks (conversation_id);

-- What a reply is for: 'response' (stops the clock), 'acknowledgement', 'away' (the
-- out-of-hours reply), 'survey'. Replies queued before this migration were responses.
ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'response';
-- When a sent reply left (the clock stops then, not when it was queued).
ALTER TABLE outbox ADD COLUMN sent_at BIGINT;

-- Raised by a service-level breach (0 normal; higher is more urgent; sorts the inbox).
ALTER TABLE conversations ADD COLUMN priority BIGINT NOT NULL DEFAULT 0;
-- The out-of-hours reply goes out once per conversation.
ALTER TABLE conversations ADD COLUMN away_replied_at BIGINT;
ALTER TABLE conversations ADD COLUMN resolved_at BIGINT;
ALTER TABLE conversations ADD COLUMN resolved_by TEXT;

-- A satisfaction survey sent after resolution, and the customer's answer (score 1-5 and the
-- form they used: number, word or emoji).
CREATE TABLE surveys (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    channel TEXT NOT NULL,
    assignee TEXT,
    team TEXT,
    requested_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    answered_at BIGINT,
    score BIGINT,
    form TEXT,
    answer_message_id TEXT
);
CREATE INDEX surveys_conversation ON surveys (conversation_id, answered_at);
CREATE INDEX surveys_tenant ON surveys (tenant, requested_at);
