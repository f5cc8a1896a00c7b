"""Memcached: one asyncio client (aiomcache) per process, and which errors are worth retrying."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import aiomcache

DEFAULT_PORT = 11211


class MemcachedUrlError(ValueError):
    """Raised when a memcached URL is not of the form memcached://host[:port]."""


def connect(url: str, *, pool_size: int = 8) -> aiomcache.Client:
    """A client of the memcached at `url` (memcached://host:port); opens its `pool_size` connections on
    first use (aiomcache's pool never grows past its minimum size, so both are `pool_size`)."""
    parts = urlsplit(url)
    if parts.scheme != "memcached" or not parts.hostname:
        raise MemcachedUrlError(f"SMARTGRID_MEMCACHED_URL: expected memcached://host:port, found {url!r}")
    return aiomcache.Client(parts.hostname, parts.port or DEFAULT_PORT, pool_size=pool_size)


def is_transient(error: BaseException) -> bool:
    """True for a memcached failure worth retrying: the server unreachable, gone or slow."""
    return isinstance(error, (OSError, asyncio.IncompleteReadError, TimeoutError))
