"""Configuration: the one module that reads environment variables.

Precedence everywhere: a command-line flag, then the environment variable, then the default of
`Settings` below. The README's configuration table documents each variable read here, with its
default and meaning (tests/unit/test_settings_table.py keeps the two equal).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import isodate

_DSN_PREFIX = "SMARTGRID_DSN_"
_REPO = Path(__file__).resolve().parents[1]


WEATHER_PROVIDERS = ("replay", "open-meteo")
DELIVERY_AUTH = ("token", "mesh")


class ConfigError(ValueError):
    """Raised when a setting has a value of the wrong form; names the variable."""


@dataclass(frozen=True)
class WeatherStation:
    """A weather station: its id, the grid region it stands for, and where it is."""

    id: str
    region: str
    latitude: float
    longitude: float


DEFAULT_WEATHER_STATIONS = (
    WeatherStation("10147", "north", 53.6332, 9.9881),  # Hamburg-Fuhlsbüttel
    WeatherStation("10382", "east", 52.5644, 13.3088),  # Berlin-Tegel
    WeatherStation("10870", "south", 48.3477, 11.8134),  # München-Flughafen
)


@dataclass(frozen=True)
class Settings:
    """Every setting of the platform, resolved once from the environment."""

    kafka_bootstrap: str | None = None
    pg_dsn: str | None = None
    state_dir: Path = Path(".smartgrid")
    ingress_port: int = 0
    eventing_workers: int = 2
    idle_seconds: float = 30.0
    max_event_bytes: int = 1024 * 1024
    delivery_timeout_s: float = 60.0
    kafka_fetch_wait_ms: int = 10
    schemas_dir: Path = _REPO / "schemas"
    functions_dir: Path = _REPO / "functions"
    eventing_dir: Path = _REPO / "eventing"
    max_future_seconds: float = 300.0
    sink_url: str | None = None
    domain_dsns: Mapping[str, str] = field(default_factory=dict)
    schema_registry_url: str | None = None
    db_prefix: str = ""
    redis_url: str | None = None
    redis_prefix: str = "smartgrid:"
    redis_cluster: bool = False
    memcached_url: str | None = None
    write_behind_interval_s: float = 1.0
    write_behind_max_keys: int = 1000
    smtp_url: str | None = None
    mail_from: str = "smartgrid@localhost"
    webhook_secret: str | None = None
    webhook_url: str | None = None
    rules_file: Path = _REPO / "knative" / "config" / "alert-rules.yaml"
    channels_file: Path = _REPO / "knative" / "config" / "notification-channels.yaml"
    retry_attempts: int = 4
    retry_initial_delay_s: float = 0.05
    retry_base: float = 2.0
    retry_max_delay_s: float = 2.0
    breaker_failures: int = 5
    breaker_recovery_s: float = 60.0
    breaker_successes: int = 2
    weather_provider: str = "replay"
    weather_url: str = "https://api.open-meteo.com/v1/forecast"
    weather_stations: tuple[WeatherStation, ...] = DEFAULT_WEATHER_STATIONS
    readings_url: str | None = None
    forecast_min_history_days: int = 21
    forecast_max_iter: int = 400
    auth_issuer: str | None = None
    auth_jwks_url: str | None = None
    auth_keys_dir: Path | None = None
    access_token_lifetime_s: int = 900
    refresh_token_lifetime_s: int = 8 * 3600
    login_max_failures: int = 5
    login_address_max_failures: int = 20
    lockout_wait_s: float = 60.0
    lockout_max_wait_s: float = 900.0
    lockout_reset_s: float = 12 * 3600.0
    admin_password: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    registry_cache_s: float = 30.0
    client_address_header: str | None = None
    delivery_auth: str = "token"
    gateway_port: int = 0
    istio_dir: Path = _REPO / "knative" / "istio"
    gateway_rate_limits: Path = _REPO / "local" / "gateway" / "rate-limits.yaml"
    gateway_tls_cert: Path | None = None
    gateway_tls_key: Path | None = None
    gateway_max_body_bytes: int = 1024 * 1024
    gateway_max_header_bytes: int = 8190
    gateway_client_timeout_s: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from `environ` (default: the process environment)."""
        env = os.environ if environ is None else environ
        defaults = cls()
        return cls(
            kafka_bootstrap=env.get("SMARTGRID_KAFKA_BOOTSTRAP") or None,
            pg_dsn=env.get("SMARTGRID_PG_DSN") or None,
            state_dir=Path(env.get("SMARTGRID_STATE_DIR") or defaults.state_dir),
            ingress_port=_int(env, "SMARTGRID_INGRESS_PORT", defaults.ingress_port),
            eventing_workers=_int(env, "SMARTGRID_EVENTING_WORKERS", defaults.eventing_workers),
            idle_seconds=_float(env, "SMARTGRID_IDLE_SECONDS", defaults.idle_seconds),
            max_event_bytes=_int(env, "SMARTGRID_MAX_EVENT_BYTES", defaults.max_event_bytes),
            delivery_timeout_s=_duration(
                env, "SMARTGRID_DELIVERY_TIMEOUT", defaults.delivery_timeout_s
            ),
            kafka_fetch_wait_ms=_int(env, "SMARTGRID_KAFKA_FETCH_WAIT_MS", defaults.kafka_fetch_wait_ms),
            schemas_dir=Path(env.get("SMARTGRID_SCHEMAS_DIR") or defaults.schemas_dir),
            functions_dir=Path(env.get("SMARTGRID_FUNCTIONS_DIR") or defaults.functions_dir),
            eventing_dir=Path(env.get("SMARTGRID_EVENTING_DIR") or defaults.eventing_dir),
            max_future_seconds=_float(
                env, "SMARTGRID_MAX_FUTURE_SECONDS", defaults.max_future_seconds
            ),
            sink_url=env.get("K_SINK") or None,
            domain_dsns={
                name.removeprefix(_DSN_PREFIX).lower(): value
                for name, value in env.items()
                if name.startswith(_DSN_PREFIX) and value
            },
            schema_registry_url=env.get("SMARTGRID_SCHEMA_REGISTRY_URL") or None,
            db_prefix=env.get("SMARTGRID_DB_PREFIX", ""),
            redis_url=env.get("SMARTGRID_REDIS_URL") or None,
            redis_prefix=env.get("SMARTGRID_REDIS_PREFIX", defaults.redis_prefix),
            redis_cluster=_bool(env, "SMARTGRID_REDIS_CLUSTER", defaults.redis_cluster),
            memcached_url=env.get("SMARTGRID_MEMCACHED_URL") or None,
            write_behind_interval_s=_float(env, "SMARTGRID_WRITE_BEHIND_INTERVAL", defaults.write_behind_interval_s),
            write_behind_max_keys=_int(env, "SMARTGRID_WRITE_BEHIND_MAX_KEYS", defaults.write_behind_max_keys),
            smtp_url=env.get("SMARTGRID_SMTP_URL") or None,
            mail_from=env.get("SMARTGRID_MAIL_FROM") or defaults.mail_from,
            webhook_secret=env.get("SMARTGRID_WEBHOOK_SECRET") or None,
            webhook_url=env.get("SMARTGRID_WEBHOOK_URL") or None,
            rules_file=Path(env.get("SMARTGRID_RULES_FILE") or defaults.rules_file),
            channels_file=Path(env.get("SMARTGRID_CHANNELS_FILE") or defaults.channels_file),
            retry_attempts=_int(env, "SMARTGRID_RETRY_ATTEMPTS", defaults.retry_attempts),
            retry_initial_delay_s=_float(env, "SMARTGRID_RETRY_INITIAL_DELAY", defaults.retry_initial_delay_s),
            retry_base=_float(env, "SMARTGRID_RETRY_BASE", defaults.retry_base),
            retry_max_delay_s=_float(env, "SMARTGRID_RETRY_MAX_DELAY", defaults.retry_max_delay_s),
            breaker_failures=_int(env, "SMARTGRID_BREAKER_FAILURES", defaults.breaker_failures),
            breaker_recovery_s=_float(env, "SMARTGRID_BREAKER_RECOVERY", defaults.breaker_recovery_s),
            breaker_successes=_int(env, "SMARTGRID_BREAKER_SUCCESSES", defaults.breaker_successes),
            weather_provider=_choice(env, "SMARTGRID_WEATHER_PROVIDER", WEATHER_PROVIDERS, defaults.weather_provider),
            weather_url=env.get("SMARTGRID_WEATHER_URL") or defaults.weather_url,
            weather_stations=_stations(env, "SMARTGRID_WEATHER_STATIONS", defaults.weather_stations),
            readings_url=env.get("SMARTGRID_READINGS_URL") or None,
            forecast_min_history_days=_int(
                env, "SMARTGRID_FORECAST_MIN_HISTORY_DAYS", defaults.forecast_min_history_days
            ),
            forecast_max_iter=_int(env, "SMARTGRID_FORECAST_MAX_ITER", defaults.forecast_max_iter),
            auth_issuer=(env.get("SMARTGRID_AUTH_ISSUER") or "").rstrip("/") or None,
            auth_jwks_url=env.get("SMARTGRID_AUTH_JWKS_URL") or None,
            auth_keys_dir=Path(env["SMARTGRID_AUTH_KEYS_DIR"]) if env.get("SMARTGRID_AUTH_KEYS_DIR") else None,
            access_token_lifetime_s=_int(env, "SMARTGRID_ACCESS_TOKEN_LIFETIME", defaults.access_token_lifetime_s),
            refresh_token_lifetime_s=_int(env, "SMARTGRID_REFRESH_TOKEN_LIFETIME", defaults.refresh_token_lifetime_s),
            login_max_failures=_int(env, "SMARTGRID_LOGIN_MAX_FAILURES", defaults.login_max_failures),
            login_address_max_failures=_int(
                env, "SMARTGRID_LOGIN_ADDRESS_MAX_FAILURES", defaults.login_address_max_failures),
            lockout_wait_s=_float(env, "SMARTGRID_LOCKOUT_WAIT", defaults.lockout_wait_s),
            lockout_max_wait_s=_float(env, "SMARTGRID_LOCKOUT_MAX_WAIT", defaults.lockout_max_wait_s),
            lockout_reset_s=_float(env, "SMARTGRID_LOCKOUT_RESET", defaults.lockout_reset_s),
            admin_password=env.get("SMARTGRID_ADMIN_PASSWORD") or None,
            client_id=env.get("SMARTGRID_CLIENT_ID") or None,
            client_secret=env.get("SMARTGRID_CLIENT_SECRET") or None,
            registry_cache_s=_float(env, "SMARTGRID_REGISTRY_CACHE_SECONDS", defaults.registry_cache_s),
            client_address_header=(env.get("SMARTGRID_CLIENT_ADDRESS_HEADER") or "").lower() or None,
            delivery_auth=_choice(env, "SMARTGRID_DELIVERY_AUTH", DELIVERY_AUTH, defaults.delivery_auth),
            gateway_port=_int(env, "SMARTGRID_GATEWAY_PORT", defaults.gateway_port),
            istio_dir=Path(env.get("SMARTGRID_ISTIO_DIR") or defaults.istio_dir),
            gateway_rate_limits=Path(env.get("SMARTGRID_GATEWAY_RATE_LIMITS") or defaults.gateway_rate_limits),
            gateway_tls_cert=_path(env, "SMARTGRID_GATEWAY_TLS_CERT"),
            gateway_tls_key=_path(env, "SMARTGRID_GATEWAY_TLS_KEY"),
            gateway_max_body_bytes=_int(env, "SMARTGRID_GATEWAY_MAX_BODY_BYTES", defaults.gateway_max_body_bytes),
            gateway_max_header_bytes=_int(env, "SMARTGRID_GATEWAY_MAX_HEADER_BYTES", defaults.gateway_max_header_bytes),
            gateway_client_timeout_s=_float(env, "SMARTGRID_GATEWAY_CLIENT_TIMEOUT", defaults.gateway_client_timeout_s),
        )

    def dsn(self, domain: str) -> str:
        """The DSN of one domain's database; raises ConfigError naming the variable when unset."""
        dsn = self.domain_dsns.get(domain)
        if dsn is None:
            raise ConfigError(f"{_DSN_PREFIX}{domain.upper()}: expected the DSN of the {domain} database, found none")
        return dsn

    def require_redis(self) -> str:
        """The Redis URL; raises ConfigError when SMARTGRID_REDIS_URL is unset."""
        if self.redis_url is None:
            raise ConfigError("SMARTGRID_REDIS_URL: expected the URL of Redis (redis://host:port/db), found none")
        return self.redis_url

    def require_issuer(self) -> str:
        """The token issuer URL; raises ConfigError when SMARTGRID_AUTH_ISSUER is unset."""
        if self.auth_issuer is None:
            raise ConfigError("SMARTGRID_AUTH_ISSUER: expected the token issuer URL (.../api/v1/auth), found none")
        return self.auth_issuer

    def jwks_url(self) -> str:
        """Where the issuer's public keys are: SMARTGRID_AUTH_JWKS_URL, else <issuer>/jwks."""
        return self.auth_jwks_url or f"{self.require_issuer()}/jwks"

    def users_service_url(self) -> str:
        """Where functions reach the users service (token endpoint, device registry): the JWKS URL
        without its path `/api/v1/auth/jwks` (set SMARTGRID_AUTH_JWKS_URL to a cluster-local address
        to keep these calls inside the cluster)."""
        return self.jwks_url().removesuffix("/api/v1/auth/jwks")

    def keys_dir(self) -> Path:
        """The signing keys' folder: SMARTGRID_AUTH_KEYS_DIR, else <state dir>/auth/keys."""
        return self.auth_keys_dir or self.state_dir / "auth" / "keys"

    def gateway_tls(self) -> tuple[Path, Path] | None:
        """The gateway's certificate chain and key (both PEM files), or None for plain HTTP; raises
        ConfigError when only one of SMARTGRID_GATEWAY_TLS_CERT and _KEY is set."""
        if (self.gateway_tls_cert is None) != (self.gateway_tls_key is None):
            raise ConfigError("SMARTGRID_GATEWAY_TLS_CERT, SMARTGRID_GATEWAY_TLS_KEY: expected both (certificate "
                              "chain and private key, PEM) or neither, found one")
        if self.gateway_tls_cert is None or self.gateway_tls_key is None:
            return None
        return self.gateway_tls_cert, self.gateway_tls_key

    def require_sink(self) -> str:
        """The broker URL events are emitted to; raises ConfigError when K_SINK is unset."""
        if self.sink_url is None:
            raise ConfigError("K_SINK: expected the URL events are sent to (the broker), found none")
        return self.sink_url


def parse_duration(text: str) -> float:
    """Seconds in an ISO-8601 duration such as `PT0.5S`; raises ValueError otherwise."""
    try:
        return isodate.parse_duration(text).total_seconds()
    except (isodate.ISO8601Error, ValueError, AttributeError) as error:
        raise ValueError(f"expected an ISO-8601 duration such as PT0.5S, found {text!r}") from error


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}: expected a whole number, found {raw!r}") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name}: expected a number of seconds, found {raw!r}") from None


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name)
    return Path(raw) if raw else None


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if not raw:
        return default
    if raw.lower() not in ("true", "false", "1", "0"):
        raise ConfigError(f"{name}: expected true or false, found {raw!r}")
    return raw.lower() in ("true", "1")


def _duration(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return parse_duration(raw)
    except ValueError as error:
        raise ConfigError(f"{name}: {error}") from None


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    raw = env.get(name)
    if not raw:
        return default
    if raw not in choices:
        raise ConfigError(f"{name}: expected one of {', '.join(choices)}, found {raw!r}")
    return raw


def _stations(env: Mapping[str, str], name: str, default: tuple[WeatherStation, ...]) -> tuple[WeatherStation, ...]:
    raw = env.get(name)
    if not raw:
        return default
    stations = []
    for entry in raw.split(","):
        parts = entry.strip().split(":")
        try:
            station_id, region, latitude, longitude = parts
            stations.append(WeatherStation(station_id, region, float(latitude), float(longitude)))
        except ValueError:
            raise ConfigError(f"{name}: expected id:region:latitude:longitude, found {entry.strip()!r}") from None
    return tuple(stations)
