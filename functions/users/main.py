"""users: identity and access for the platform (OAuth 2.0 / OpenID Connect issuer at /api/v1/auth),
the admin APIs of users and devices, and the audit log (its only writer).

Tokens are RS256 JWTs signed with the keys of SMARTGRID_AUTH_KEYS_DIR; users log in with the password
grant, devices and platform services with client_credentials; refresh tokens rotate on every use.
A POST to / is an audit event (`com.smartgrid.audit.recorded`) from the broker, appended to the
hash-chained log. See shared/users/api.py for the routes.
"""

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response

from shared.config import Settings
from shared.http import probe
from shared.users.wiring import users_api
from shared.validation.catalogue import Catalogue

settings = Settings.from_env()
api = users_api(settings, Catalogue.load())


@functions_framework.aio.http
async def handler(request: Request) -> Response:
    """Answer one request of the users service (a GET outside its paths is a probe)."""
    path = request.url.path
    if request.method == "GET" and not path.startswith("/api/"):
        return probe(request)
    return await api(request)
