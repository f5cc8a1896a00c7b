-- The readings API (shared/readings/query.py) pages through a time range in (ts, id) order:
-- these indexes serve that range scan and its keyset cursor on every monthly partition.
CREATE INDEX meter_readings_ts_meter ON meter_readings (ts, meter_id);
CREATE INDEX sensor_readings_ts_device ON sensor_readings (ts, device_id);
