"""The Confluent wire format: magic byte 0, a 4-byte big-endian schema id, then Avro binary."""

from __future__ import annotations

import struct
from collections.abc import Callable
from io import BytesIO
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from shared.validation.catalogue import EventSchema
from shared.validation.validators import InvalidData

MAGIC_BYTE = 0
_HEADER = struct.Struct(">bi")
# What fastavro raises on bytes that are not the writer schema's encoding.
_UNDECODABLE = (EOFError, ValueError, LookupError, OverflowError, struct.error)


def is_confluent_avro(payload: bytes) -> bool:
    """True when the payload starts like a Confluent-framed record (JSON never does)."""
    return len(payload) >= _HEADER.size and payload[0] == MAGIC_BYTE


def encode(schema: EventSchema, datum: dict[str, Any]) -> bytes:
    """A validated datum (see EventSchema.validate) framed with the schema's id."""
    buffer = BytesIO()
    buffer.write(_HEADER.pack(MAGIC_BYTE, schema.schema_id))
    schemaless_writer(buffer, schema.parsed, datum)
    return buffer.getvalue()


def decode(payload: bytes, resolve: Callable[[int], EventSchema]) -> tuple[EventSchema, dict[str, Any]]:
    """The writer's schema and the datum, checked by its rules; raises InvalidData.

    `resolve` maps a schema id to its schema and raises LookupError for an unknown id.
    """
    if not is_confluent_avro(payload):
        found = f"magic byte {payload[0]}" if len(payload) >= _HEADER.size else f"{len(payload)} bytes"
        raise InvalidData(
            "payload", f"expected magic byte 0 and a 4-byte schema id (Confluent Avro), found {found}"
        )
    _, schema_id = _HEADER.unpack_from(payload)
    try:
        schema = resolve(schema_id)
    except LookupError:
        raise InvalidData("payload", f"expected a known schema id, found {schema_id}") from None
    buffer = BytesIO(payload)
    buffer.seek(_HEADER.size)
    try:
        datum = schemaless_reader(buffer, schema.parsed, None)
    except _UNDECODABLE as error:
        raise InvalidData(
            "payload",
            f"expected Avro binary of {schema.type} v{schema.version}, "
            f"found bytes that do not decode ({type(error).__name__})",
        ) from None
    trailing = len(payload) - buffer.tell()
    if trailing:
        raise InvalidData(
            "payload", f"expected one Avro datum of {schema.type} v{schema.version}, found {trailing} bytes after it"
        )
    return schema, schema.validate(datum)
