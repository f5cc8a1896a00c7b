"""The alerting objects of a function, built from the settings: one place, so detect and alerts agree."""

from __future__ import annotations

from dataclasses import dataclass

from shared.alerting.detector import Detector
from shared.alerting.engine import RuleEngine
from shared.alerting.operations import AlertOperations
from shared.alerting.outbox import Publisher
from shared.alerting.rules import RuleSet
from shared.alerting.statestore import StateStore
from shared.alerting.store import AlertStore
from shared.auth.wiring import gateway_check
from shared.config import Settings
from shared.readings.decoding import ReadingDecoder
from shared.resilience import Downstream, Downstreams
from shared.sink import EventSink
from shared.stores import postgres, redis
from shared.stores.postgres import Database
from shared.validation.catalogue import Catalogue
from shared.validation.registry import RegistryClient


@dataclass(frozen=True)
class Alerting:
    """Everything the alerting functions use."""

    engine: RuleEngine
    states: StateStore
    alerts: AlertStore
    publisher: Publisher
    detector: Detector
    operations: AlertOperations
    database: Downstream

    async def close(self) -> None:
        """Close the connections: Redis, the database pool, the broker's HTTP session."""
        await self.states.close()
        await self.alerts.close()
        await self.publisher.close()


def alerting(settings: Settings, source: str) -> Alerting:
    """Build the alerting objects; `source` is the CloudEvents source of the events they emit."""
    catalogue = Catalogue.load(settings.schemas_dir / "events", max_future_seconds=settings.max_future_seconds)
    resolve = RegistryClient(settings.schema_registry_url).event_schema if settings.schema_registry_url else catalogue.by_id
    downstreams = Downstreams.from_settings(settings)
    engine = RuleEngine(RuleSet.load(settings.rules_file))
    states = StateStore(redis.connect(settings.require_redis()), redis.Keys(settings.redis_prefix))
    alerts = AlertStore(Database(settings.dsn("smartgrid"), max_size=2))
    database = downstreams.get("postgres:smartgrid", postgres.is_transient)
    publisher = Publisher(states, alerts, EventSink(settings.require_sink(), downstreams), source, database=database)
    detector = Detector(ReadingDecoder(catalogue, resolve, gateway_check(settings, downstreams)).read, engine, states, publisher,
                        redis=downstreams.get("redis", redis.is_transient))
    operations = AlertOperations(engine, states, alerts, publisher)
    return Alerting(engine, states, alerts, publisher, detector, operations, database)
