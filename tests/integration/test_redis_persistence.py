"""The local Redis keeps its data across a restart (append-only file in the state folder)."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from local.servers.redis import redis_server

pytestmark = pytest.mark.integration


def test_a_restarted_redis_still_has_what_was_written(tmp_path: Path) -> None:
    with redis_server(None, tmp_path) as url:
        client = redis.Redis.from_url(url)
        client.set("smartgrid:alerting:outbox-probe", "kept")
        client.close()
    with redis_server(None, tmp_path) as url:  # a new process, on another port, on the same folder
        client = redis.Redis.from_url(url)
        assert client.get("smartgrid:alerting:outbox-probe") == b"kept"
        client.close()
    assert any((tmp_path / "redis").rglob("*.aof")), "the append-only file is in the state folder"
