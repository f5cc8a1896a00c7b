-- Aggregates of meter readings per meter, feeder and region in 15-minute, hourly and daily buckets
-- (UTC), maintained by the `analytics` function (shared/analytics/aggregator.py).

-- The import register (OBIS 1.8.0) of each meter reading, once per meter and time: energy deltas are
-- derived from neighbouring points, so a late or duplicate reading never counts twice.
CREATE TABLE meter_register_points (
    meter_id   text             NOT NULL,
    ts         timestamptz      NOT NULL,
    feeder_id  text,
    region     text,
    import_kwh double precision NOT NULL,  -- 1.8.0
    power_kw   double precision,           -- 1.7.0, instantaneous import power
    voltage_v  double precision,           -- mean of the phase voltages sent (32.7.0, 52.7.0, 72.7.0)
    PRIMARY KEY (meter_id, ts)
);

-- One row per level ('meter', 'feeder', 'region'), entity, bucket ('15min', 'hour', 'day') and start.
-- Sums and counts are kept so that coarser buckets add up finer ones; means are derived on reading.
CREATE TABLE aggregates (
    level          text             NOT NULL CHECK (level IN ('meter', 'feeder', 'region')),
    entity_id      text             NOT NULL,
    bucket         text             NOT NULL CHECK (bucket IN ('15min', 'hour', 'day')),
    bucket_start   timestamptz      NOT NULL,
    feeder_id      text,            -- meter rows of 15 minutes: the meter's feeder and region then
    region         text,
    energy_kwh     double precision NOT NULL,
    readings       integer          NOT NULL,
    power_sum_kw   double precision NOT NULL,
    power_count    integer          NOT NULL,
    power_min_kw   double precision,
    power_max_kw   double precision,
    voltage_sum_v  double precision NOT NULL,
    voltage_count  integer          NOT NULL,
    peak_demand_kw double precision NOT NULL,  -- highest 15-minute mean demand (energy / 0.25 h)
    peak_at        timestamptz      NOT NULL,  -- start of that quarter hour
    updated_at     timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (level, entity_id, bucket, bucket_start)
);

CREATE INDEX aggregates_meter_quarters_feeder ON aggregates (feeder_id, bucket_start)
    WHERE level = 'meter' AND bucket = '15min';
CREATE INDEX aggregates_meter_quarters_region ON aggregates (region, bucket_start)
    WHERE level = 'meter' AND bucket = '15min';
