"""Stores: PostgreSQL, Redis, Memcached, Elasticsearch clients set up the project's way."""
