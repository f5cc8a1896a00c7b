"""Fallbacks: what a call answers instead when its downstream fails."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


async def with_fallback(
    call: Callable[[], Awaitable[T]],
    fallback: Callable[[Exception], T | Awaitable[T]],
    *,
    on: tuple[type[Exception], ...] = (Exception,),
) -> T:
    """`await call()`, or when it raises one of `on`, what `fallback(error)` returns (awaited if need be)."""
    try:
        return await call()
    except on as error:
        answer = fallback(error)
        if inspect.isawaitable(answer):
            return await answer
        return answer


def default(value: T) -> Callable[[Exception], T]:
    """A fallback answering `value` whatever the error."""
    return lambda error: value


class LastGood(Generic[K, V]):
    """The last good value per key, to answer with while a downstream is failing."""

    def __init__(self) -> None:
        self._values: dict[K, V] = {}

    def remember(self, key: K, value: V) -> V:
        """Keep `value` as the last good one of `key`; returns it."""
        self._values[key] = value
        return value

    def fallback_for(self, key: K) -> Callable[[Exception], V]:
        """A fallback answering the last good value of `key`, or re-raising the error when there is none."""

        def last_good(error: Exception) -> V:
            if key not in self._values:
                raise error
            return self._values[key]

        return last_good
