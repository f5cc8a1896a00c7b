"""The forecast function's domain: scheduled training of versioned models per feeder and region, issuing
day-ahead forecasts with them (stored and emitted), and the API serving both."""
