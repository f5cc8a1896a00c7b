-- Every attempt to notify someone of an alert: which channel carried it (or refused it), to whom,
-- and what came of it. A notification that fails over to another channel leaves one row per channel.

CREATE TABLE notification_attempts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id        text        NOT NULL,  -- the alert occurrence, or digest:<channel>:<recipient>:<ms>
    event_type      text        NOT NULL,  -- raised, updated, acknowledged, cleared, escalated, digest
    channel         text        NOT NULL,  -- name in the channels file
    recipient       text        NOT NULL,
    status          text        NOT NULL
        CHECK (status IN ('sent', 'failed', 'suppressed', 'rate_limited', 'digested')),
    error           text,                  -- why it failed or was held back
    attempted_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX notification_attempts_alert ON notification_attempts (alert_id);
