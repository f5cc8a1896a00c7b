-- Readings of grid sensors and smart meters, partitioned by month of the reading's time.
-- The primary keys make storage idempotent: a redelivered or resent reading is one row.
-- Partitions are created on demand by shared/readings/store.py (ensure_partitions).

CREATE TABLE sensor_readings (
    device_id           text             NOT NULL,
    ts                  timestamptz      NOT NULL,
    feeder_id           text             NOT NULL,
    lat                 double precision,
    lon                 double precision,
    voltage_l1_v        double precision,
    voltage_l2_v        double precision,
    voltage_l3_v        double precision,
    current_l1_a        double precision,
    current_l2_a        double precision,
    current_l3_a        double precision,
    rated_current_a     double precision,
    frequency_hz        double precision,
    active_power_kw     double precision,
    reactive_power_kvar double precision,
    power_factor        double precision,
    temperature_c       double precision,
    event_id            text             NOT NULL,
    received_at         timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, ts)
) PARTITION BY RANGE (ts);

CREATE INDEX sensor_readings_feeder_ts ON sensor_readings (feeder_id, ts);

CREATE TABLE meter_readings (
    meter_id        text             NOT NULL,
    ts              timestamptz      NOT NULL,
    site_id         text             NOT NULL,
    feeder_id       text,
    region          text,
    import_kwh      double precision NOT NULL,  -- OBIS 1.8.0
    export_kwh      double precision,           -- 2.8.0
    import_kw       double precision,           -- 1.7.0
    export_kw       double precision,           -- 2.7.0
    voltage_l1_v    double precision,           -- 32.7.0
    voltage_l2_v    double precision,           -- 52.7.0
    voltage_l3_v    double precision,           -- 72.7.0
    current_l1_a    double precision,           -- 31.7.0
    current_l2_a    double precision,           -- 51.7.0
    current_l3_a    double precision,           -- 71.7.0
    other_registers jsonb,                      -- any further OBIS codes, kept as sent
    event_id        text             NOT NULL,
    received_at     timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (meter_id, ts)
) PARTITION BY RANGE (ts);

CREATE INDEX meter_readings_feeder_ts ON meter_readings (feeder_id, ts);
