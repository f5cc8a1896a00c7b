"""The analytics API's answers cached in Redis, never stale after a write.

Each meter, feeder and region has a generation (`<prefix>{analytics:<level>:<id>}:gen`); an answer is
cached under its entity's current generation for 300 s (`<prefix>{analytics:<level>:<id>}:answer:<gen>:
<query>`), and aggregation bumps the generation of every entity of a batch once its transaction
committed, so later reads miss the old answers (which expire). A failed bump fails the event, whose
redelivery bumps again.

Redis Cluster (SMARTGRID_REDIS_CLUSTER): the `{analytics:<level>:<id>}` hash tag puts an entity's
generation and answers in one slot, every command touches one key, and the bumps go in a
non-transactional pipeline, which the cluster client splits by node.

Lookups are counted in `smartgrid_analytics_cache_requests_total{outcome="hit"|"miss"|"error"}`
(the process's default registry, served on every function's `GET /metrics`); the hit ratio is
hit / (hit + miss + error).
"""

from __future__ import annotations

from collections.abc import Iterable

import redis.asyncio as aioredis
from prometheus_client import Counter

from shared.stores.redis import Keys

TTL_S = 300
REQUESTS = Counter(
    "smartgrid_analytics_cache_requests_total",
    "Lookups of cached analytics answers, by outcome: hit, miss or error (Redis unavailable).",
    ["outcome"],
)


class AnswerCache:
    """Cached API answers per entity generation."""

    def __init__(self, client: aioredis.Redis, keys: Keys, ttl_s: int = TTL_S) -> None:
        self._client = client
        self._keys = keys
        self._ttl_s = ttl_s

    async def close(self) -> None:
        """Close the Redis client."""
        await self._client.aclose()

    async def lookup(self, level: str, entity: str, query: str) -> tuple[str, bytes | None]:
        """The key an answer is cached under now, and the answer when cached."""
        generation = await self._client.get(self._keys(_tag(level, entity), "gen"))
        key = self._keys(_tag(level, entity), "answer", (generation or b"0").decode(), query)
        answer = await self._client.get(key)
        REQUESTS.labels("miss" if answer is None else "hit").inc()
        return key, answer

    def failed(self) -> None:
        """Count a lookup that Redis could not answer."""
        REQUESTS.labels("error").inc()

    async def store(self, key: str, answer: bytes) -> None:
        """Cache an answer under the key `lookup` gave."""
        await self._client.set(key, answer, ex=self._ttl_s)

    async def touched(self, entities: Iterable[tuple[str, str]]) -> None:
        """Start a new generation of each (level, id): their cached answers are no longer read."""
        async with self._client.pipeline(transaction=False) as pipe:
            for level, entity in sorted(set(entities)):
                pipe.incr(self._keys(_tag(level, entity), "gen"))
            await pipe.execute()


def _tag(level: str, entity: str) -> str:
    """The hash tag of an entity's keys: Redis Cluster keeps its generation and answers in one slot."""
    return f"{{analytics:{level}:{entity}}}"
