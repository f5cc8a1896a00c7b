"""Forecasting models: the seasonal-naive baseline and the gradient-boosting model."""
