-- Two lookups that read every conversation of a tenant, once per running clock or team member.
--
-- Conversations looked up by their channel key alone (the API and the service-level sweep
-- accept an id or a key): without this index, each lookup read every conversation of the
-- tenant, and a sweep over thousands of running clocks took longer than its interval.
CREATE INDEX conversations_key ON conversations (tenant, conversation_key);

-- An agent's load (open conversations assigned to them), counted for each member of a team
-- on every assignment: without this index, a count read every conversation of the tenant.
CREATE INDEX conversations_assignee ON conversations (tenant, assignee, state);
