"""The settings of the analytics caches and counters, and memcached URLs."""

from __future__ import annotations

import pytest

from shared.config import ConfigError, Settings
from shared.stores.memcached import MemcachedUrlError, connect


def test_defaults_are_a_single_redis_no_memcached_and_one_second_flushes() -> None:
    settings = Settings.from_env({})
    assert (settings.redis_cluster, settings.memcached_url) == (False, None)
    assert (settings.write_behind_interval_s, settings.write_behind_max_keys) == (1.0, 1000)


def test_the_variables_are_read() -> None:
    settings = Settings.from_env({"SMARTGRID_REDIS_CLUSTER": "true", "SMARTGRID_MEMCACHED_URL": "memcached://m:11211",
                                  "SMARTGRID_WRITE_BEHIND_INTERVAL": "0.5", "SMARTGRID_WRITE_BEHIND_MAX_KEYS": "10"})
    assert (settings.redis_cluster, settings.memcached_url) == (True, "memcached://m:11211")
    assert (settings.write_behind_interval_s, settings.write_behind_max_keys) == (0.5, 10)


def test_a_cluster_flag_that_is_not_a_boolean_is_refused_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match="SMARTGRID_REDIS_CLUSTER"):
        Settings.from_env({"SMARTGRID_REDIS_CLUSTER": "yes please"})


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379", "memcached://", "127.0.0.1:11211"])
def test_memcached_urls_need_the_scheme_and_a_host(url: str) -> None:
    with pytest.raises(MemcachedUrlError, match="SMARTGRID_MEMCACHED_URL"):
        connect(url)
