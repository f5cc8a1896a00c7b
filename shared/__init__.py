"""smartgrid's own library, used by every function: config, CloudEvents, validation, stores, resilience."""
