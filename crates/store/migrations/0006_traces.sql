-- Trace context: the W3C `traceparent` of the span that accepted a message, so that processing
-- and delivery continue the webhook's trace after the queue hop, even after a restart. NULL
-- when tracing was off at acceptance (or for messages stored before this migration).
ALTER TABLE messages ADD COLUMN traceparent TEXT;
