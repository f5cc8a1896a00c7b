-- Alerts: one row per occurrence (raised until cleared) and the history of its changes.
CREATE TABLE alerts (
    alert_id        text PRIMARY KEY,           -- <rule_id>:<device_id>:<raised_at epoch ms>
    dedup_key       text        NOT NULL,       -- <rule_id>:<device_id>
    rule_id         text        NOT NULL,
    device_id       text        NOT NULL,
    feeder_id       text,
    region          text,
    severity        text        NOT NULL CHECK (severity IN ('info', 'warning', 'critical', 'emergency')),
    status          text        NOT NULL CHECK (status IN ('open', 'acknowledged', 'cleared')),
    raised_at       timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    acknowledged_at timestamptz,
    acknowledged_by text,
    cleared_at      timestamptz,
    cleared_by      text,
    value           float8,
    threshold       float8,
    message         text        NOT NULL
);

-- The same condition never has two open alerts.
CREATE UNIQUE INDEX alerts_one_open_per_condition ON alerts (dedup_key) WHERE status <> 'cleared';
CREATE INDEX alerts_by_time ON alerts (raised_at DESC);
CREATE INDEX alerts_not_cleared ON alerts (severity, raised_at DESC) WHERE status <> 'cleared';
CREATE INDEX alerts_by_feeder ON alerts (feeder_id, raised_at DESC);
CREATE INDEX alerts_by_rule ON alerts (rule_id, raised_at DESC);

CREATE TABLE alert_history (
    event_id    text PRIMARY KEY,               -- the CloudEvent id of the change: stored once
    alert_id    text        NOT NULL REFERENCES alerts (alert_id),
    change      text        NOT NULL CHECK (change IN ('raised', 'updated', 'acknowledged', 'cleared')),
    at          timestamptz NOT NULL,
    severity    text        NOT NULL,
    value       float8,
    threshold   float8,
    message     text        NOT NULL,
    actor       text,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX alert_history_of_alert ON alert_history (alert_id, at);
