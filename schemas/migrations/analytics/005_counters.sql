-- Write-behind counters of the analytics function (shared/analytics/counters.py): high-rate counts kept
-- in each process's memory and added here in one batched upsert per flush (value = value + delta).
-- counter: 'readings' (meter readings received per meter) or 'queries' (API requests per entity,
-- entity '<level>:<id>'); day: the UTC day counted.
CREATE TABLE analytics_counters (
    counter    text        NOT NULL,
    entity     text        NOT NULL,
    day        date        NOT NULL,
    value      bigint      NOT NULL CHECK (value >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (counter, entity, day)
);
