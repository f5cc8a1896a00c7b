-- Grid frequency (OBIS 14.7.0) of the meter readings that carry it, and its mean per bucket
-- (frequency_sum_hz / frequency_count), like voltage.
ALTER TABLE meter_register_points ADD COLUMN frequency_hz double precision;  -- 14.7.0

ALTER TABLE aggregates
    ADD COLUMN frequency_sum_hz double precision NOT NULL DEFAULT 0,
    ADD COLUMN frequency_count  integer          NOT NULL DEFAULT 0;
