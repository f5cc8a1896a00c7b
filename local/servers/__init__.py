"""Backing servers: each is taken from its environment variable when set, else started locally."""
