"""Rate limits of the gateway: envoyproxy/ratelimit's configuration, enforced as token buckets in Redis.

Configuration: the YAML of envoyproxy/ratelimit (the global rate limit service the cluster runs from a
ConfigMap holding the same document as rate-limits.yaml here): `domain`, and `descriptors`, a tree of
entries `{key, value?, rate_limit?: {unit, requests_per_unit} | {unlimited: true}, descriptors?}`.
The gateway sends one descriptor per request, an ordered list of (key, value) pairs:
`[("caller_kind", device|user|service|anonymous), ("route", <VirtualService http route>), ("caller",
<token subject, or the client address when anonymous>)]`.

Matching follows envoyproxy/ratelimit (README "Descriptor list definition", examples 3, 4 and 9;
`GetLimit` in src/config/config_impl.go); it walks the tree one level per pair of the descriptor:
- At each level the entry with the pair's key and value wins, then one whose value ends in `*` and is a
  prefix of the pair's value (the first in the file), then the entry with the key and no value, which
  takes any value. There is no backtracking: once the (key, value) entry is taken, the key-only entry
  of that level is never tried, even when the taken entry's subtree matches nothing further.
- Only the entry matched at the descriptor's *last* pair can apply a limit ("request depth must match
  config depth", example 4): a `rate_limit` on an entry above it does not apply to a longer descriptor,
  and a descriptor longer than the tree's branch matches no limit. So every limit of rate-limits.yaml
  sits on a `caller` entry, the third level. No match: not limited. `unlimited: true`: not limited.
- The limit counts per distinct descriptor, all its values included (the Go service's cache key): a
  key-only entry thus limits each value separately. `requests_per_unit: 0` refuses every request.

Differences from envoyproxy/ratelimit, on purpose: a token bucket (capacity requests_per_unit, refilled
continuously at requests_per_unit per unit) instead of its fixed windows, so a caller never gets twice
the limit across a window boundary; the loader is stricter (a subset of what the Go service accepts,
so a document valid here is valid there): `requests_per_unit` must be given, values must be strings,
and `shadow_mode`, `detailed_metric`, `name` and `replaces` are refused as not implemented here.

State: one Redis hash per bucket, `<SMARTGRID_REDIS_PREFIX>ratelimit:<domain>:<entry path>:<values>`
(values percent-encoded), shared by every gateway replica, expiring once the bucket would be full
again. One Lua script refills by the time elapsed on Redis's own clock (`TIME`: replicas' clocks may
differ), takes a token when one is there, and answers, atomically.

Redis unavailable (refused, erroring, or slower than `timeout_s`): the request is allowed (fail open,
as Envoy's rate limit filter does by default), counted in `smartgrid_gateway_ratelimit_errors_total`
and logged as a warning. An edge that refuses every request whenever Redis blips is worse than one that
does not limit for that moment.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import redis.asyncio as aioredis
import yaml
from prometheus_client import Counter
from redis.exceptions import RedisError

from shared.stores.redis import Keys

log = logging.getLogger("smartgrid.gateway.ratelimit")

DEFAULT_CONFIG_FILE = Path(__file__).with_name("rate-limits.yaml")
UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
ERRORS = Counter(
    "smartgrid_gateway_ratelimit_errors_total",
    "Rate limit checks Redis did not answer (unreachable, failing or too slow); those requests were allowed.",
)

_ENTRY_FIELDS = ("key", "value", "rate_limit", "descriptors")
_LIMIT_FIELDS = ("unit", "requests_per_unit", "unlimited")
_NOT_IMPLEMENTED = ("shadow_mode", "detailed_metric", "name", "replaces")

# KEYS[1]: the bucket, a hash {tokens, at}. ARGV: capacity, seconds to refill from empty to full.
# Returns {1 allowed | 0 refused, whole tokens left, seconds until one token, seconds until full}; the
# seconds as strings, since Redis truncates Lua numbers in replies to integers.
_TAKE = """
redis.replicate_commands() -- Redis < 5: replicate the writes, not the script, as it reads TIME
local capacity = tonumber(ARGV[1])
local rate = capacity / tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens == nil or at == nil then
  tokens = capacity
else
  tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
end
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
local until_one = math.max(0, 1 - tokens) / rate
local until_full = (capacity - tokens) / rate
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(until_full * 1000) + 1)
return {allowed, math.floor(tokens), string.format('%.6f', until_one), string.format('%.6f', until_full)}
"""


class RateLimitConfigError(ValueError):
    """Raised when a rate limit configuration is not of the expected form; names the field (`field`)."""

    def __init__(self, source: str, field: str, message: str) -> None:
        super().__init__(f"{source}: {field}: {message}")
        self.source = source
        self.field = field


@dataclass(frozen=True)
class RateLimit:
    """A limit: `requests_per_unit` per `unit` (None when `unlimited`)."""

    unit: str | None
    requests_per_unit: int
    unlimited: bool = False

    @property
    def period_s(self) -> int:
        """The seconds of the unit: the time an empty bucket takes to fill."""
        return UNIT_SECONDS[self.unit or "second"]


@dataclass(frozen=True)
class DescriptorEntry:
    """One entry of the descriptor tree; `path` is its full key as envoyproxy/ratelimit names it
    (`caller_kind_device.route.caller`)."""

    key: str
    value: str | None
    rate_limit: RateLimit | None
    descriptors: tuple[DescriptorEntry, ...]
    path: str

    def takes(self, value: str) -> bool:
        """True when this entry's value is a prefix pattern (`abc*`) that `value` starts with."""
        return self.value is not None and self.value.endswith("*") and value.startswith(self.value[:-1])


@dataclass(frozen=True)
class RateLimitConfig:
    """The rate limits of one domain."""

    domain: str
    descriptors: tuple[DescriptorEntry, ...]

    def match(self, descriptor: Sequence[tuple[str, str]]) -> DescriptorEntry | None:
        """The entry whose limit applies to `descriptor` (see the module's docstring), None when none does."""
        level = self.descriptors
        for depth, (key, value) in enumerate(descriptor):
            entry = _select(level, key, value)
            if entry is None:
                return None
            if depth == len(descriptor) - 1:
                return entry if entry.rate_limit is not None else None
            level = entry.descriptors
        return None


def _select(level: tuple[DescriptorEntry, ...], key: str, value: str) -> DescriptorEntry | None:
    """The entry of one level a (key, value) pair takes: same value, else a matching prefix, else no value."""
    same_key = [entry for entry in level if entry.key == key]
    return (next((entry for entry in same_key if entry.value == value), None)
            or next((entry for entry in same_key if entry.takes(value)), None)
            or next((entry for entry in same_key if entry.value is None), None))


def load_config(text_or_path: str | os.PathLike[str]) -> RateLimitConfig:
    """Parse a configuration in envoyproxy/ratelimit's YAML: a path (a `Path`, or a one-line string
    naming an existing file) or the document's text. Raises RateLimitConfigError naming the field."""
    text, source = _read(text_or_path)
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise RateLimitConfigError(source, "(document)", f"expected YAML, found a syntax error: {error}") from None
    return _Loader(source).config(document)


def _read(text_or_path: str | os.PathLike[str]) -> tuple[str, str]:
    if isinstance(text_or_path, str) and ("\n" in text_or_path or not os.path.isfile(text_or_path)):
        return text_or_path, "<rate limit config>"
    path = Path(text_or_path)
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except OSError as error:
        raise RateLimitConfigError(str(path), "(file)", f"expected a readable file, found {error}") from None


class _Loader:
    """Checks a parsed document field by field, naming the field (`descriptors[0].rate_limit.unit`)."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, field: str, message: str) -> RateLimitConfigError:
        return RateLimitConfigError(self.source, field, message)

    def mapping(self, node: Any, field: str, known: tuple[str, ...]) -> Mapping[str, Any]:
        """`node` as a mapping of known fields only."""
        if not isinstance(node, dict):
            raise self.error(field, f"expected a mapping with {', '.join(known)}, found {_kind(node)}")
        for name in node:
            if name in _NOT_IMPLEMENTED:
                raise self.error(_join(field, str(name)), "is an envoyproxy/ratelimit field the local gateway "
                                 f"does not implement; expected only {', '.join(known)}")
            if name not in known:
                raise self.error(_join(field, str(name)), f"unknown field; expected one of {', '.join(known)}")
        return node

    def string(self, node: Any, field: str) -> str:
        if not isinstance(node, str) or not node:
            raise self.error(field, f"expected a non-empty string (quote numbers and booleans), found {_kind(node)}")
        return node

    def config(self, document: Any) -> RateLimitConfig:
        root = self.mapping(document, "(document)", ("domain", "descriptors"))
        if "domain" not in root:
            raise self.error("domain", "expected the domain of the limits (smartgrid), found none")
        return RateLimitConfig(self.string(root["domain"], "domain"),
                               self.entries(root.get("descriptors"), "descriptors", ""))

    def entries(self, node: Any, field: str, parent: str) -> tuple[DescriptorEntry, ...]:
        if node is None:
            return ()
        if not isinstance(node, list):
            raise self.error(field, f"expected a list of descriptor entries, found {_kind(node)}")
        entries: dict[tuple[str, str | None], int] = {}
        loaded = []
        for index, item in enumerate(node):
            entry = self.entry(item, f"{field}[{index}]", parent)
            if (entry.key, entry.value) in entries:
                raise self.error(f"{field}[{index}]", f"expected one entry per key and value, found "
                                 f"{entry.path!r} again (first at {field}[{entries[entry.key, entry.value]}])")
            entries[entry.key, entry.value] = index
            loaded.append(entry)
        return tuple(loaded)

    def entry(self, node: Any, field: str, parent: str) -> DescriptorEntry:
        fields = self.mapping(node, field, _ENTRY_FIELDS)
        if "key" not in fields:
            raise self.error(_join(field, "key"), "expected the descriptor key, found none")
        key = self.string(fields["key"], _join(field, "key"))
        value = self.string(fields["value"], _join(field, "value")) if fields.get("value") is not None else None
        path = parent + (key if value is None else f"{key}_{value}")
        limit = self.limit(fields["rate_limit"], _join(field, "rate_limit")) if "rate_limit" in fields else None
        return DescriptorEntry(key, value, limit, self.entries(fields.get("descriptors"),
                                                               _join(field, "descriptors"), path + "."), path)

    def limit(self, node: Any, field: str) -> RateLimit:
        fields = self.mapping(node, field, _LIMIT_FIELDS)
        unlimited = fields.get("unlimited", False)
        if not isinstance(unlimited, bool):
            raise self.error(_join(field, "unlimited"), f"expected true or false, found {_kind(unlimited)}")
        if unlimited:
            if "unit" in fields or "requests_per_unit" in fields:
                raise self.error(field, "expected either unlimited: true or a unit and requests_per_unit, found both")
            return RateLimit(None, 0, unlimited=True)
        unit = fields.get("unit")
        if not isinstance(unit, str) or unit.lower() not in UNIT_SECONDS:
            raise self.error(_join(field, "unit"), f"expected one of {', '.join(UNIT_SECONDS)}, found {_kind(unit)}")
        count = fields.get("requests_per_unit")
        if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count < 2**32:
            raise self.error(_join(field, "requests_per_unit"),
                             f"expected a whole number from 0 to {2**32 - 1}, found {_kind(count)}")
        return RateLimit(unit.lower(), count)


def _join(field: str, name: str) -> str:
    return name if field == "(document)" else f"{field}.{name}"


def _kind(node: Any) -> str:
    return "none" if node is None else f"{type(node).__name__} {node!r}"


@dataclass(frozen=True)
class Decision:
    """The answer for one request: allowed or not, the limit, whole tokens left, seconds until the bucket
    is full again (`reset_s`) and until one token is there (`retry_after_s`, 0 when one is there now)."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: float
    retry_after_s: float


class RateLimiter:
    """Token buckets in Redis for the limits of `config`, shared by every gateway replica."""

    def __init__(self, redis: aioredis.Redis, config: RateLimitConfig, *, prefix: str,
                 timeout_s: float = 0.2) -> None:
        """`prefix`: SMARTGRID_REDIS_PREFIX (buckets live under `<prefix>ratelimit:`); `timeout_s`: how
        long a check may wait for Redis before the request is allowed (Envoy's filter waits 20 ms)."""
        self._config = config
        self._keys = Keys(prefix)
        self._timeout_s = timeout_s
        self._take = redis.register_script(_TAKE)

    @property
    def config(self) -> RateLimitConfig:
        """The limits enforced."""
        return self._config

    async def check(self, descriptor: Sequence[tuple[str, str]]) -> Decision | None:
        """Take one token for `descriptor` from its bucket. None when no limit applies (no match, or
        unlimited), or when Redis could not answer (fail open: counted and logged)."""
        entry = self._config.match(descriptor)
        if entry is None or entry.rate_limit is None or entry.rate_limit.unlimited:
            return None
        limit = entry.rate_limit
        if limit.requests_per_unit == 0:
            return Decision(False, 0, 0, float(limit.period_s), float(limit.period_s))
        key = self._keys("ratelimit", self._config.domain, entry.path,
                         *(quote(value, safe="") for _, value in descriptor))
        try:
            async with asyncio.timeout(self._timeout_s):
                allowed, remaining, until_one, until_full = await self._take(
                    keys=[key], args=[limit.requests_per_unit, limit.period_s])
        except (RedisError, OSError) as error:  # OSError includes TimeoutError
            ERRORS.inc()
            log.warning("rate limit %s not checked, request allowed (fail open): %s: %s", key,
                        type(error).__name__, error)
            return None
        return Decision(bool(allowed), limit.requests_per_unit, int(remaining), float(until_full), float(until_one))


def headers(decision: Decision) -> dict[str, str]:
    """The response fields of a decision: RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset
    (delta seconds until the quota is whole again) of the IETF draft "RateLimit header fields for HTTP"
    (draft-ietf-httpapi-ratelimit-headers, the revisions up to -06 with three fields), and Retry-After
    (RFC 9110 10.2.3, whole seconds, at least 1) when refused."""
    fields = {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(_whole_seconds(decision.reset_s)),
    }
    if not decision.allowed:
        fields["Retry-After"] = str(max(1, _whole_seconds(decision.retry_after_s)))
    return fields


def _whole_seconds(seconds: float) -> int:
    """Seconds rounded up, after dropping the sub-millisecond noise of floating point."""
    return max(0, math.ceil(round(seconds, 3)))
