-- Author history as running counts, so that reading it costs the same for a customer's 10th
-- message as for their 10,000th.
--
-- Each message carries whether it counted as an offence (the policy ignored, monitored or
-- blocked it) and as praise (a live `advocate` label scoring at least 0.5), set once when its
-- outcome is committed; `author_counters` sums messages, offences and praise per channel
-- identity. A customer's history is the sum over their identities (merges move identities, so
-- the sums follow), less the few messages accepted after the one being read.
ALTER TABLE messages ADD COLUMN offence BIGINT NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN praise BIGINT NOT NULL DEFAULT 0;

-- Backfill: the same tests the per-message scan applied, so an upgraded store answers as before.
UPDATE messages SET
    offence = CASE WHEN EXISTS (
        SELECT 1 FROM decisions d WHERE d.message_id = messages.id
          AND (d.actions LIKE '%"ignore"%' OR d.actions LIKE '%"monitor"%' OR d.actions LIKE '%"block"%')
    ) THEN 1 ELSE 0 END,
    praise = CASE WHEN EXISTS (
        SELECT 1 FROM labels l WHERE l.message_id = messages.id
          AND l.role = 'live' AND l.name = 'advocate' AND l.score >= 0.5
    ) THEN 1 ELSE 0 END;

CREATE TABLE author_counters (
    tenant TEXT NOT NULL,
    channel TEXT NOT NULL,
    author_id TEXT NOT NULL,
    -- Messages stored (every event: new, edited, deleted), processed or not.
    messages BIGINT NOT NULL,
    -- Committed messages that were offences / praise.
    offences BIGINT NOT NULL,
    praise BIGINT NOT NULL,
    PRIMARY KEY (tenant, channel, author_id)
);

INSERT INTO author_counters (tenant, channel, author_id, messages, offences, praise)
SELECT tenant, channel, author_id, COUNT(*), SUM(offence), SUM(praise)
FROM messages GROUP BY tenant, channel, author_id;

-- A customer's identities, and their messages accepted after a given one.
CREATE INDEX identities_customer ON identities (tenant, customer_id);
CREATE INDEX messages_customer_accepted ON messages (tenant, customer_id, accepted_at, offence, praise);
DROP INDEX messages_customer;
