"""Day-ahead load forecasting: features, models, metrics and their evaluation on held-out weeks."""
