"""The forecast function through its real HTTP interface: train, train again, issue, serve, refuse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import psycopg
import pytest
from aiohttp import web

from shared.cloudevents import PING_EVENT_TYPE, CloudEvent, new_event, to_http_binary
from shared.forecast.service.events import FORECAST_EVENT_TYPE
from shared.validation.catalogue import Catalogue
from tests.identity import Endpoint, Identity
from tests.integration.eventing.subscriber import Subscriber
from tests.integration.forecast.conftest import Seeded

pytestmark = pytest.mark.integration


def ping(job: Any, time: datetime, id: str = "ping-1") -> CloudEvent:
    return new_event(PING_EVENT_TYPE, "/apis/v1/namespaces/smartgrid/pingsources/forecast", id, {"job": job},
                     time=time.isoformat().replace("+00:00", "Z"))


async def post(endpoint: Endpoint, event: CloudEvent) -> tuple[int, dict]:
    headers, body = to_http_binary(event)
    async with aiohttp.ClientSession() as session, session.post(
            endpoint.url, data=body, headers={**headers, **endpoint.headers}) as response:
        return response.status, await response.json()


async def get(endpoint: Endpoint, path: str) -> tuple[int, dict, str | None]:
    async with aiohttp.ClientSession() as session, session.get(endpoint.url + path, headers=endpoint.headers) as response:
        return response.status, await response.json(), response.headers.get("Cache-Control")


def mine(entries: list[dict], seeded: Seeded) -> list[tuple[str, str]]:
    """The (level, entity_id) of the entries about the seeded entities, sorted."""
    ours = {*seeded.trainable, seeded.short}
    return sorted((e["level"], e["entity_id"]) for e in entries if (e["level"], e["entity_id"]) in ours)


def versions(answer: dict) -> dict[tuple[str, str], int]:
    """The version trained per entity in a train job's answer."""
    return {(e["level"], e["entity_id"]): e["version"] for e in answer["trained"]}


def models(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT level, entity_id, version, model_mae_kw, baseline_mae_kw, skill, validation_values,"
            " validation_end - validation_start, features, length(model) FROM forecast_models"
            " WHERE entity_id LIKE 'fc-%' ORDER BY level, entity_id, version").fetchall()


def forecast_rows(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT level, entity_id, count(*), min(ts), max(model_version), min(issued_at)"
                            " FROM forecasts WHERE entity_id LIKE 'fc-%' GROUP BY level, entity_id"
                            " ORDER BY level, entity_id").fetchall()


async def test_train_train_again_issue_and_serve(
    forecast: Endpoint, broker: Subscriber, domain_dsns: dict[str, str], seeded: Seeded
) -> None:
    dsn, now = domain_dsns["analytics"], datetime.now(UTC).replace(second=0, microsecond=0)
    status, answer = await post(forecast, ping("train", now))
    assert status == 200, answer
    assert mine(answer["trained"], seeded) == sorted(seeded.trainable)
    assert mine(answer["skipped"], seeded) == [seeded.short]
    skipped = next(e for e in answer["skipped"] if e["entity_id"] == "fc-short")
    assert skipped["reason"].startswith("insufficient history") and "21 days" in skipped["reason"], skipped

    stored = models(dsn)
    assert [(level, entity, version) for level, entity, version, *_ in stored] == [
        (*entity, 1) for entity in sorted(seeded.trainable)]
    for _, entity, _, model_mae, baseline_mae, skill, validated, validation_week, features, size in stored:
        assert model_mae > 0 and baseline_mae > 0 and skill == pytest.approx(1 - model_mae / baseline_mae)
        assert model_mae < baseline_mae, f"{entity}: the model beats the seasonal-naive baseline"
        assert validation_week == timedelta(days=7) and validated > 600
        assert features["boosting"]["max_iter"] == 60 and size > 0
        assert features["weather_columns"] == (["temperature_c", "ghi_w_m2"] if entity in ("fc-f1", "fc-north")
                                               else []), entity

    status, answer = await post(forecast, ping("train", now + timedelta(minutes=1), "ping-2"))
    assert status == 200 and mine(answer["trained"], seeded) == sorted(seeded.trainable), answer
    assert {e["version"] for e in answer["trained"] if e["entity_id"].startswith("fc-")} == {2}

    status, answer = await post(forecast, ping("forecast", now, "ping-3"))
    tomorrow = (now + timedelta(days=1)).date()
    assert status == 200, answer
    assert answer["day"] == tomorrow.isoformat()
    assert mine(answer["issued"], seeded) == sorted(seeded.trainable)
    midnight = datetime.combine(tomorrow, datetime.min.time(), UTC)
    expected_rows = [(*entity, 96, midnight, 2, now) for entity in sorted(seeded.trainable)]
    assert forecast_rows(dsn) == expected_rows

    received = await broker.wait_for("broker", len(answer["issued"]))
    catalogue = Catalogue.load()
    events = {r.event.attributes["partitionkey"]: r.event for r in received}
    assert sorted(events) == sorted(entity for _, entity in seeded.trainable)
    for entity_id, event in events.items():
        assert event.type == FORECAST_EVENT_TYPE
        data = catalogue.validate(FORECAST_EVENT_TYPE, event.json())
        assert data["entity_id"] == entity_id and data["day"] == tomorrow.isoformat() and data["model_version"] == 2
        assert len(data["forecast_kw"]) == 96 and all(value is not None for value in data["baseline_kw"])

    status, served, cache = await get(forecast, "/api/v1/forecasts/feeders/fc-f1")
    assert status == 200 and cache == "max-age=300", served
    assert (served["day"], served["model_version"], len(served["quarters"])) == (tomorrow.isoformat(), 2, 96)
    assert datetime.fromisoformat(served["issued_at"]) == now
    first = served["quarters"][0]
    assert datetime.fromisoformat(first["ts"]) == midnight and first["forecast_kw"] > 0 and first["baseline_kw"] > 0
    assert served["quarters"][0]["forecast_kw"] == events["fc-f1"].json()["forecast_kw"][0]

    status, versions, _ = await get(forecast, "/api/v1/forecasts/regions/fc-north/models")
    assert status == 200 and [v["version"] for v in versions["versions"]] == [1, 2], versions
    assert all(v["model_mae_kw"] > 0 and v["baseline_mae_kw"] > 0 and "skill" in v for v in versions["versions"])

    status, answer = await post(forecast, ping("forecast", now, "ping-3"))
    assert status == 200, "a redelivered ping"
    assert forecast_rows(dsn) == expected_rows, "replaces the day's rows"
    again = await broker.wait_for("broker", 2 * len(answer["issued"]))
    assert {r.event.id for r in again} == {e.id for e in events.values()}, "and emits the same event ids"


async def test_bad_pings_and_requests_are_refused(forecast: Endpoint, broker: Subscriber) -> None:
    now = datetime.now(UTC)
    for job in ("retrain", None, 7):
        status, answer = await post(forecast, ping(job, now))
        assert (status, answer["field"]) == (400, "data.job"), answer
    status, answer = await post(forecast, new_event("com.smartgrid.sensor.reading", "/t", "x-1", {"a": 1}))
    assert (status, answer["field"]) == (400, "type"), answer

    for path in ("feeders/fc-nowhere", "feeders/fc-nowhere/models", "regions/fc-nowhere", "meters/fc-f1"):
        status, answer, _ = await get(forecast, f"/api/v1/forecasts/{path}")
        assert (status, answer["field"]) == (404, "path"), (path, answer)
    for day in ("tomorrow", "2026-13-01", "20261122"):
        status, answer, _ = await get(forecast, f"/api/v1/forecasts/feeders/fc-f1?day={day}")
        assert (status, answer["field"]) == (400, "day"), (day, answer)


async def test_training_runs_only_for_its_pingsource_or_an_admin(forecast: Endpoint, identity: Identity) -> None:
    ping_of_nobody = ping("train", datetime.now(UTC), "ping-forbidden")
    for headers, status in ((identity.headers("viewer"), 403), (identity.headers("operator"), 403),
                            (identity.headers("analyst"), 403), (identity.device("gw-1", "gateway"), 403),
                            ({}, 401), ({"Authorization": "Bearer x.y.z"}, 401),
                            (identity.headers("registry-reader", kind="service"), 403)):
        code, answer = await post(Endpoint(forecast.url, headers), ping_of_nobody)
        assert (code, answer["field"]) == (status, "authorization"), (headers, answer)
    viewer = Endpoint(forecast.url, identity.headers("viewer"))
    assert (await get(viewer, "/api/v1/forecasts/feeders/fc-nowhere"))[0] == 404, "a viewer reads the API"
    assert (await get(Endpoint(forecast.url, {}), "/api/v1/forecasts/feeders/fc-f1"))[0] == 401


async def test_redelivered_pings_and_an_unavailable_broker(
    forecast: Endpoint, broker: Subscriber, seeded: Seeded
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    status, first = await post(forecast, ping("train", now, "ping-train"))
    assert status == 200, first
    status, again = await post(forecast, ping("train", now, "ping-train"))
    assert status == 200, again
    assert versions(again) == versions(first), "a redelivered train ping answers the versions it made"
    assert all(e["repeated"] for e in again["trained"]), "and trains nothing again"
    broker.answers["broker"] = lambda _: web.Response(status=503)
    status, answer = await post(forecast, ping("forecast", now, "ping-503"))
    assert (status, answer["error"]) == (503, "downstream unavailable"), answer
    del broker.answers["broker"]
    status, answer = await post(forecast, ping("forecast", now, "ping-503"))
    assert status == 200 and mine(answer["issued"], seeded) == sorted(seeded.trainable), answer
