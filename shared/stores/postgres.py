"""PostgreSQL: connection pools (psycopg 3 + psycopg_pool) and which errors are worth retrying."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import psycopg
from psycopg import AsyncConnection, errors
from psycopg_pool import AsyncConnectionPool, PoolTimeout

_TRANSIENT = (
    psycopg.OperationalError,  # connection refused or lost, server shutting down
    errors.SerializationFailure,
    errors.DeadlockDetected,
    errors.LockNotAvailable,
    errors.QueryCanceled,
    PoolTimeout,
)


def is_transient(error: BaseException) -> bool:
    """True for errors that may pass on a later try (connection, locks, shutdown)."""
    return isinstance(error, _TRANSIENT)


class Database:
    """One domain's database: a connection pool opened on first use inside the running loop."""

    def __init__(
        self,
        dsn: str,
        *,
        max_size: int = 4,
        configure: Callable[[AsyncConnection], Awaitable[None]] | None = None,
    ) -> None:
        self._pool = AsyncConnectionPool(
            dsn, min_size=1, max_size=max_size, open=False, timeout=10.0, configure=configure
        )
        self._opened = False
        self._opening = asyncio.Lock()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection; the pool opens on the first call."""
        if not self._opened:
            async with self._opening:
                if not self._opened:
                    await self._pool.open(wait=True)
                    self._opened = True
        async with self._pool.connection() as conn:
            yield conn

    async def close(self) -> None:
        """Close the pool and its connections."""
        await self._pool.close()
