"""Redis: one asyncio client per process, and the key namespace every key of the platform lives in."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ClusterDownError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


class StateConflict(RuntimeError):
    """Raised when watched keys kept changing under an optimistic transaction; the caller retries later (5xx)."""


def connect(url: str, *, max_connections: int = 32, wait_s: float = 10.0, cluster: bool = False) -> aioredis.Redis:
    """A client of the Redis at `url` (redis://host:port/db); connects lazily, on first use. Beyond
    `max_connections` in use, a call waits up to `wait_s` for one to come back.

    With `cluster` (SMARTGRID_REDIS_CLUSTER), `url` is any node of a Redis Cluster and the client
    follows its slots; only single-key commands and non-transactional pipelines work across slots, and
    `max_connections` is per node, beyond which a call fails at once (MaxConnectionsError, transient).
    """
    if cluster:
        return RedisCluster.from_url(url, max_connections=max_connections, health_check_interval=30)  # type: ignore[return-value]
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=wait_s, health_check_interval=30
    )
    return aioredis.Redis(connection_pool=pool)


def is_transient(error: BaseException) -> bool:
    """True for a Redis failure worth retrying: the server unreachable or slow, a cluster (re)sharding."""
    return isinstance(error, (RedisConnectionError, RedisTimeoutError, OSError, ClusterDownError, TryAgainError))


class Keys:
    """Builds the platform's Redis keys under one prefix (SMARTGRID_REDIS_PREFIX), e.g. `smartgrid:rule:...`."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __call__(self, *parts: str) -> str:
        """The key of `parts`, joined by ':' after the prefix."""
        return self.prefix + ":".join(parts)
