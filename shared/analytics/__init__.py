"""Analytics: aggregates of meter readings per meter, feeder and region, and the API that reads them."""
