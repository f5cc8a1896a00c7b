"""PostgreSQL: connection pools (psycopg 3 + psycopg_pool) and which errors are worth retrying."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import psycopg
from psycopg import AsyncConnection
from psycopg import errors
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


def connection_pool(
    dsn: str,
    *,
    max_size: int = 4,
    name: str = "smartgrid",
    configure: Callable[[AsyncConnection], Awaitable[None]] | None = None,
) -> AsyncConnectionPool:
    """An unopened pool for `dsn`; open it with `await pool.open()` inside the running loop."""
    return AsyncConnectionPool(
        dsn, min_size=1, max_size=max_size, open=False, name=name, timeout=10.0, configure=configure
    )
