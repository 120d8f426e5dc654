-- Incidents: many customers reporting the same problem in a short window, opened by the
-- detector, by a policy rule's `incident` action or by an agent. Same portable types as 0001.

-- One problem. `group_key` is what groups its reports: a label (`topic:website`), a policy
-- rule's incident name (`app-crash`), `text:<message id>` for near-identical texts, or an
-- agent's choice. At most one open incident per group and tenant; later reports attach to it.
-- status: open, closed, merged (then `merged_into` names the incident that took it over).
CREATE TABLE incidents (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    group_key TEXT NOT NULL,
    title TEXT NOT NULL,
    status TEXT NOT NULL,
    -- `detector`, `policy:<rule>`, or the agent who opened it.
    opened_by TEXT NOT NULL,
    opened_at BIGINT NOT NULL,
    -- For near-identical-text incidents: the text later reports are compared with.
    sample TEXT,
    -- Why it opened (JSON): reports in the window against the usual count, the rule, the agent.
    evidence TEXT NOT NULL,
    -- The public statement's draft (purpose `incident-statement`), once there is a message to
    -- hang it on.
    statement_draft_id TEXT REFERENCES drafts (id),
    closed_at BIGINT,
    closed_by TEXT,
    merged_into TEXT REFERENCES incidents (id)
);
CREATE UNIQUE INDEX incidents_one_open ON incidents (tenant, group_key) WHERE status = 'open';
CREATE INDEX incidents_tenant ON incidents (tenant, status, opened_at);

-- The conversations an incident affects, each with the customer message that tied it there
-- (what the incident reply and the follow-up answer).
CREATE TABLE incident_conversations (
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    tenant TEXT NOT NULL,
    message_id TEXT NOT NULL REFERENCES messages (id),
    attached_at BIGINT NOT NULL,
    attached_by TEXT NOT NULL,
    PRIMARY KEY (incident_id, conversation_id)
);
CREATE INDEX incident_conversations_conversation ON incident_conversations (conversation_id);

-- Every customer message that may be part of an incident (the policy answers it, or a rule
-- named an incident), written in the same transaction as its outcome. The detector counts
-- these, and settles each one right after the commit; one left unsettled by a crash is settled
-- with the next message. `incident_id` is the incident it went to, if any.
CREATE TABLE incident_reports (
    message_id TEXT PRIMARY KEY REFERENCES messages (id),
    tenant TEXT NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    customer_id TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    text TEXT NOT NULL,
    -- A policy rule's incident name and the rules that named it, when one did.
    rule_key TEXT,
    rule_actor TEXT,
    created_at BIGINT NOT NULL,
    settled_at BIGINT,
    incident_id TEXT REFERENCES incidents (id)
);
CREATE INDEX incident_reports_window ON incident_reports (tenant, received_at);
CREATE INDEX incident_reports_pending ON incident_reports (tenant, settled_at);
