"""The audit log: entries, their hash chain, the store in the users database, and audit events."""
