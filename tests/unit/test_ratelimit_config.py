"""The gateway's rate limit configuration: envoyproxy/ratelimit's YAML, its matching, and its errors."""

from __future__ import annotations

import pytest

from local.gateway.ratelimit import (
    DEFAULT_CONFIG_FILE,
    Decision,
    RateLimit,
    RateLimitConfigError,
    headers,
    load_config,
)


def descriptor(kind: str, route: str, caller: str) -> list[tuple[str, str]]:
    return [("caller_kind", kind), ("route", route), ("caller", caller)]


def limit_of(config_text: str, pairs: list[tuple[str, str]]) -> RateLimit | None:
    entry = load_config(config_text).match(pairs)
    return None if entry is None else entry.rate_limit


@pytest.mark.parametrize(("kind", "route", "expected"), [
    ("device", "ingest", 50), ("user", "readings", 20), ("service", "analytics", 100),
    ("anonymous", "readings", 5), ("anonymous", "auth", 1), ("user", "auth", 20),
])
def test_the_default_file_holds_the_documented_limits(kind: str, route: str, expected: int) -> None:
    config = load_config(DEFAULT_CONFIG_FILE)
    entry = config.match(descriptor(kind, route, "someone"))
    assert config.domain == "smartgrid"
    assert entry is not None and entry.rate_limit == RateLimit("second", expected)


def test_the_default_file_limits_nothing_else() -> None:
    config = load_config(DEFAULT_CONFIG_FILE)
    assert config.match(descriptor("robot", "ingest", "r-1")) is None
    assert config.match([("caller_kind", "device"), ("route", "ingest")]) is None  # no limit at depth 2
    assert config.match([*descriptor("device", "ingest", "d-1"), ("extra", "x")]) is None  # deeper than the tree
    assert config.match([]) is None


def test_a_path_given_as_a_string_is_read() -> None:
    assert load_config(str(DEFAULT_CONFIG_FILE)) == load_config(DEFAULT_CONFIG_FILE)


WILDCARD_FIRST = """
domain: d
descriptors:
  - key: route
    rate_limit: {unit: second, requests_per_unit: 10}
  - key: route
    value: auth
    rate_limit: {unit: minute, requests_per_unit: 3}
  - key: route
    value: report*
    rate_limit: {unit: hour, requests_per_unit: 7}
"""


def test_an_entry_with_the_value_wins_over_the_key_alone_wherever_it_stands() -> None:
    assert limit_of(WILDCARD_FIRST, [("route", "auth")]) == RateLimit("minute", 3)
    assert limit_of(WILDCARD_FIRST, [("route", "readings")]) == RateLimit("second", 10)
    assert limit_of(WILDCARD_FIRST, [("other", "auth")]) is None


def test_a_value_ending_in_a_star_takes_the_values_it_prefixes_before_the_key_alone() -> None:
    assert limit_of(WILDCARD_FIRST, [("route", "reports-daily")]) == RateLimit("hour", 7)
    assert limit_of(WILDCARD_FIRST, [("route", "repo")]) == RateLimit("second", 10)


NESTED = """
domain: d
descriptors:
  - key: kind
    value: a
    rate_limit: {unit: second, requests_per_unit: 1}
    descriptors:
      - key: route
        rate_limit: {unit: second, requests_per_unit: 2}
  - key: kind
    descriptors:
      - key: route
        value: r
        descriptors:
          - key: caller
            rate_limit: {unit: second, requests_per_unit: 3}
      - key: route
        descriptors:
          - key: caller
            rate_limit: {unit: second, requests_per_unit: 4}
"""


def test_only_the_entry_matched_at_the_last_pair_applies_its_limit() -> None:
    assert limit_of(NESTED, [("kind", "a")]) == RateLimit("second", 1)
    assert limit_of(NESTED, [("kind", "a"), ("route", "x")]) == RateLimit("second", 2)
    # The limit of an entry above the last pair does not apply to a longer descriptor.
    assert limit_of(NESTED, [("kind", "a"), ("route", "x"), ("caller", "c")]) is None
    assert limit_of(NESTED, [("kind", "b"), ("route", "r"), ("caller", "c")]) == RateLimit("second", 3)
    assert limit_of(NESTED, [("kind", "b"), ("route", "s"), ("caller", "c")]) == RateLimit("second", 4)
    assert limit_of(NESTED, [("kind", "b"), ("route", "s")]) is None  # matched, but no limit there


def test_the_walk_never_falls_back_to_the_key_alone_once_a_value_entry_was_taken() -> None:
    # kind=a has no `caller` below `route`; kind (any value) has, but is not tried for kind=a.
    assert limit_of(NESTED, [("kind", "a"), ("route", "r"), ("caller", "c")]) is None


def test_unlimited_and_zero_limits_load() -> None:
    text = """
domain: d
descriptors:
  - {key: ldap, rate_limit: {unlimited: true}}
  - {key: banned, rate_limit: {unit: Second, requests_per_unit: 0}}
"""
    assert limit_of(text, [("ldap", "x")]) == RateLimit(None, 0, unlimited=True)
    assert limit_of(text, [("banned", "x")]) == RateLimit("second", 0)


def test_the_entry_path_is_envoys_full_key() -> None:
    entry = load_config(DEFAULT_CONFIG_FILE).match(descriptor("anonymous", "auth", "10.0.0.1"))
    assert entry is not None and entry.path == "caller_kind_anonymous.route_auth.caller"


@pytest.mark.parametrize(("text", "field", "says"), [
    ("domain: d\ndescriptors:\n  - key: k\n    rate_limit: {unit: fortnight, requests_per_unit: 1}\n",
     "descriptors[0].rate_limit.unit", "expected one of second, minute, hour, day, found str 'fortnight'"),
    ("domain: d\ndescriptors:\n  - key: k\n    rate_limit: {unit: second}\n",
     "descriptors[0].rate_limit.requests_per_unit", "found none"),
    ("domain: d\ndescriptors:\n  - key: k\n    rate_limit: {unit: second, requests_per_unit: -1}\n",
     "descriptors[0].rate_limit.requests_per_unit", "found int -1"),
    ("domain: d\ndescriptors:\n  - key: k\n    descriptors:\n      - key: j\n        valeu: x\n",
     "descriptors[0].descriptors[0].valeu", "unknown field; expected one of key, value, rate_limit, descriptors"),
    ("domain: d\ndescriptors:\n  - key: k\n    shadow_mode: true\n",
     "descriptors[0].shadow_mode", "does not implement"),
    ("domain: d\ndescriptors:\n  - key: k\n    rate_limit: {unit: second, requests_per_unit: 1, per: caller}\n",
     "descriptors[0].rate_limit.per", "unknown field"),
    ("domain: d\ndescriptors:\n  - key: k\n    value: 5\n", "descriptors[0].value", "found int 5"),
    ("domain: d\ndescriptors:\n  - value: v\n", "descriptors[0].key", "found none"),
    ("domain: d\ndescriptors:\n  - {key: k, value: v}\n  - {key: k}\n  - {key: k, value: v}\n",
     "descriptors[2]", "found 'k_v' again (first at descriptors[0])"),
    ("descriptors: []\n", "domain", "found none"),
    ("domain: d\ndescriptor: []\n", "descriptor", "unknown field; expected one of domain, descriptors"),
    ("domain: d\ndescriptors: {key: k}\n", "descriptors", "expected a list"),
    ("domain: [d\n", "(document)", "expected YAML"),
    ("domain: d\ndescriptors:\n  - key: k\n    rate_limit: {unlimited: true, unit: second}\n",
     "descriptors[0].rate_limit", "found both"),
])
def test_errors_name_the_field_and_what_was_found(text: str, field: str, says: str) -> None:
    with pytest.raises(RateLimitConfigError) as raised:
        load_config(text)
    assert raised.value.field == field
    assert f"{field}: " in str(raised.value) and says in str(raised.value)
    assert isinstance(raised.value, ValueError)


def test_an_unreadable_file_is_named(tmp_path) -> None:
    with pytest.raises(RateLimitConfigError, match="missing.yaml: \\(file\\): expected a readable file"):
        load_config(tmp_path / "missing.yaml")


def test_headers_of_an_allowed_and_a_refused_decision() -> None:
    assert headers(Decision(True, 20, 19, 0.05, 0.0)) == {
        "RateLimit-Limit": "20", "RateLimit-Remaining": "19", "RateLimit-Reset": "1"}
    assert headers(Decision(False, 5, 0, 59.2, 11.0000001)) == {
        "RateLimit-Limit": "5", "RateLimit-Remaining": "0", "RateLimit-Reset": "60", "Retry-After": "11"}
    assert headers(Decision(False, 100, 0, 0.01, 0.01))["Retry-After"] == "1"  # at least 1
