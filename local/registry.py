"""A local, read-only Schema Registry: the event catalogue behind the Confluent REST API subset.

GET /subjects, /subjects/<subject>/versions, /subjects/<subject>/versions/<version|latest>,
/schemas/ids/<id> and /schemas/ids/<id>/versions, with the official bodies and error codes.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from shared.validation.catalogue import Catalogue, EventSchema
from shared.validation.registry import CONTENT_TYPE, SCHEMA_NOT_FOUND, subject_types

SUBJECT_NOT_FOUND = 40401
VERSION_NOT_FOUND = 40402
INVALID_VERSION = 42202
_MAX_VERSION = 2**31 - 1


def registry_app(catalogue: Catalogue) -> web.Application:
    """An aiohttp application serving the catalogue's schemas as a Schema Registry."""
    subjects = subject_types(catalogue.types)

    def versions_of(subject: str) -> list[EventSchema]:
        type = subjects.get(subject)
        if type is None:
            raise _error(web.HTTPNotFound, SUBJECT_NOT_FOUND, f"Subject '{subject}' not found.")
        return catalogue.versions(type)

    def schema_by_id(raw_id: str) -> EventSchema:
        try:
            return catalogue.by_id(int(raw_id))
        except (ValueError, LookupError):
            raise _error(web.HTTPNotFound, SCHEMA_NOT_FOUND, f"Schema {raw_id} not found") from None

    async def list_subjects(request: web.Request) -> web.Response:
        return _json(list(subjects))

    async def list_versions(request: web.Request) -> web.Response:
        return _json([schema.version for schema in versions_of(request.match_info["subject"])])

    async def get_version(request: web.Request) -> web.Response:
        subject = request.match_info["subject"]
        versions = versions_of(subject)
        version = _version_number(request.match_info["version"], latest=versions[-1].version)
        found = [schema for schema in versions if schema.version == version]
        if not found:
            raise _error(web.HTTPNotFound, VERSION_NOT_FOUND, f"Version {version} not found.")
        schema = found[0]
        return _json({"subject": subject, "version": schema.version, "id": schema.schema_id, "schema": schema.text})

    async def get_schema(request: web.Request) -> web.Response:
        return _json({"schema": schema_by_id(request.match_info["id"]).text})

    async def get_schema_versions(request: web.Request) -> web.Response:
        schema = schema_by_id(request.match_info["id"])
        holders = [subject for subject, type in subjects.items() if type == schema.type]
        return _json([{"subject": subject, "version": schema.version} for subject in holders])

    app = web.Application()
    app.add_routes(
        [
            web.get("/subjects", list_subjects),
            web.get("/subjects/{subject}/versions", list_versions),
            web.get("/subjects/{subject}/versions/{version}", get_version),
            web.get("/schemas/ids/{id}", get_schema),
            web.get("/schemas/ids/{id}/versions", get_schema_versions),
        ]
    )
    return app


def _version_number(text: str, *, latest: int) -> int:
    if text in ("latest", "-1"):
        return latest
    if text.isdigit() and 1 <= int(text) <= _MAX_VERSION:
        return int(text)
    raise _error(
        web.HTTPUnprocessableEntity,
        INVALID_VERSION,
        f"The specified version '{text}' is not a valid version id. "
        'Allowed values are between [1, 2^31-1] and the string "latest"',
    )


def _json(body: Any) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type=CONTENT_TYPE)


def _error(kind: type[web.HTTPException], error_code: int, message: str) -> web.HTTPException:
    body = orjson.dumps({"error_code": error_code, "message": message}).decode()
    return kind(text=body, content_type=CONTENT_TYPE)
