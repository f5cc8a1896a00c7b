"""Weather observations: provider adapters, their storage in the analytics database, their events."""
