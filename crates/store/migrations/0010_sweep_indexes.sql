-- The server asks every 10 s which tenants have running clocks or unsettled incident reports,
-- and sweeps only those. Partial indexes hold only such rows, so the question (and each
-- tenant's own list) costs what is running now, not every clock and report ever recorded.
-- They replace the (tenant, stopped_at) and (tenant, settled_at) indexes, which served only
-- the same `IS NULL` lookups and which the planner preferred, scanning all history.
DROP INDEX response_clocks_open;
CREATE INDEX response_clocks_running ON response_clocks (tenant) WHERE stopped_at IS NULL;
DROP INDEX incident_reports_pending;
CREATE INDEX incident_reports_unsettled ON incident_reports (tenant) WHERE settled_at IS NULL;
