"""Starting the local gateway from the settings: what `smartgrid up` and `smartgrid gateway serve` share."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from local import aio
from local.gateway.manifests import Manifests
from local.gateway.server import Gateway, GatewayOptions
from shared.config import Settings


def gateway_options(settings: Settings, service_urls: Mapping[str, str], *, issuer: str | None,
                    redis_url: str | None) -> GatewayOptions:
    """The gateway's options: the local URL of each Knative Service, the running issuer, Redis, and the
    SMARTGRID_GATEWAY_* settings."""
    tls = settings.gateway_tls()
    return GatewayOptions(
        service_urls=dict(service_urls),
        issuer=issuer,
        redis_url=redis_url,
        redis_prefix=settings.redis_prefix,
        rate_limits=settings.gateway_rate_limits,
        max_body_bytes=settings.gateway_max_body_bytes,
        max_header_bytes=settings.gateway_max_header_bytes,
        client_timeout_s=settings.gateway_client_timeout_s,
        tls_cert=tls[0] if tls else None,
        tls_key=tls[1] if tls else None,
        port=settings.gateway_port,
    )


async def start_gateway(manifests: Manifests, options: GatewayOptions) -> Gateway:
    """A started gateway (its URL: `gateway.url`); the caller stops it."""
    gateway = Gateway(manifests, options)
    try:
        await gateway.start()
    except BaseException:
        await gateway.stop()
        raise
    return gateway


async def serve(manifests: Manifests, options: GatewayOptions) -> None:
    """`smartgrid gateway serve`: run the gateway until SIGINT or SIGTERM, printing `gateway <URL>`."""
    stopping = asyncio.create_task(aio.until_stopped())
    await asyncio.sleep(0)  # the signal handlers are in place before the gateway starts
    gateway = await start_gateway(manifests, options)
    try:
        print("gateway", gateway.url, flush=True)
        await stopping
    finally:
        stopping.cancel()
        await gateway.stop()
