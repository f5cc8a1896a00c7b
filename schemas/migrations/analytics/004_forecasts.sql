-- Day-ahead load forecasts of the `forecast` function (functions/forecast, shared/forecast/service):
-- the trained models, versioned per feeder or region, and the forecasts issued with them.

-- One row per trained model: version numbers grow by one per entity. The validation metrics are those
-- of the model fitted on all but the validation week and of the seasonal-naive baseline on that week
-- (NULL when undefined: MAPE over zero loads, skill over a perfect baseline); `model` is the model refitted
-- on the whole training window, serialized with joblib.
CREATE TABLE forecast_models (
    level              text             NOT NULL CHECK (level IN ('feeder', 'region')),
    entity_id          text             NOT NULL,
    version            integer          NOT NULL CHECK (version > 0),
    trained_at         timestamptz      NOT NULL,
    training_start     timestamptz      NOT NULL,  -- first quarter with a load value
    training_end       timestamptz      NOT NULL,  -- end of the last quarter (exclusive)
    validation_start   timestamptz      NOT NULL,
    validation_end     timestamptz      NOT NULL,  -- exclusive
    training_values    integer          NOT NULL,  -- quarters the validated model was fitted on
    validation_values  integer          NOT NULL,  -- quarters it was scored on
    model_mae_kw       double precision NOT NULL,
    model_rmse_kw      double precision NOT NULL,
    model_mape_pct     double precision,
    baseline_mae_kw    double precision NOT NULL,
    baseline_rmse_kw   double precision NOT NULL,
    baseline_mape_pct  double precision,
    skill              double precision,           -- 1 - model MAE / baseline MAE
    training_seconds   double precision NOT NULL,
    features           jsonb            NOT NULL,  -- interval, country, lags, weather columns, hyper-parameters
    model              bytea            NOT NULL,
    PRIMARY KEY (level, entity_id, version)
);

-- One row per entity and quarter forecast (UTC): re-issuing a day replaces its rows.
CREATE TABLE forecasts (
    level         text             NOT NULL CHECK (level IN ('feeder', 'region')),
    entity_id     text             NOT NULL,
    ts            timestamptz      NOT NULL,  -- start of the quarter
    forecast_kw   double precision NOT NULL,  -- the model's mean power of the quarter
    baseline_kw   double precision,           -- seasonal naive: the same quarter one week earlier
    model_version integer          NOT NULL,
    issued_at     timestamptz      NOT NULL,
    PRIMARY KEY (level, entity_id, ts),
    FOREIGN KEY (level, entity_id, model_version) REFERENCES forecast_models (level, entity_id, version)
);
