-- Weather observations of the weather function (functions/weather), one row per station and time,
-- for the load forecaster. A repeated observation (a redelivered ping) updates its row.
CREATE TABLE weather_observations (
    station_id            text             NOT NULL,
    region                text             NOT NULL,
    ts                    timestamptz      NOT NULL,
    temperature_c         double precision,
    ghi_w_m2              double precision,
    wind_speed_m_s        double precision,
    cloud_cover_pct       double precision,
    relative_humidity_pct double precision,
    PRIMARY KEY (station_id, ts)
);

CREATE INDEX weather_observations_region_ts ON weather_observations (region, ts);
