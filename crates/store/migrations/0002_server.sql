-- What the server adds: API tokens, tenant state, write-only secrets, poll cursors, assignment,
-- and the plugin version behind every label.

-- API tokens, stored only as their SHA-256. role: admin, supervisor, agent.
CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX api_tokens_tenant ON api_tokens (tenant);

-- A tenant switched off by an operator: its webhooks get 404 and its workers stop.
CREATE TABLE tenant_state (
    tenant TEXT PRIMARY KEY,
    disabled BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL
);

-- Secrets written through the admin API (never readable through it). They override the
-- tenant file's secret of the same instance and name.
CREATE TABLE tenant_secrets (
    tenant TEXT NOT NULL,
    instance TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, instance, name)
);

-- Where each polled connector got to. Written only after the batch's messages are accepted,
-- so a crash re-polls from the last cursor (and de-duplication absorbs the overlap).
CREATE TABLE poll_cursors (
    tenant TEXT NOT NULL,
    connector TEXT NOT NULL,
    cursor TEXT,
    polled_at BIGINT NOT NULL,
    failures BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    PRIMARY KEY (tenant, connector)
);

ALTER TABLE conversations ADD COLUMN assignee TEXT;
-- The plugin (name@version, digest prefix) that produced a label: which version decided.
ALTER TABLE labels ADD COLUMN plugin TEXT NOT NULL DEFAULT '';
-- Who last edited or decided on a draft, and why it was rejected.
ALTER TABLE drafts ADD COLUMN decided_by TEXT;
ALTER TABLE drafts ADD COLUMN reason TEXT;
