-- Events that could not be processed: the event as it was, why, and whether it was replayed.

CREATE TABLE dead_letters (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        text        NOT NULL,
    event_type      text        NOT NULL,
    event_source    text        NOT NULL,
    attributes      jsonb       NOT NULL,  -- every context attribute and extension, as received
    data            bytea,
    error_dest      text,                  -- knativeerrordest
    error_code      integer,               -- knativeerrorcode
    error_text      text,                  -- knativeerrordata, decoded
    received_at     timestamptz NOT NULL DEFAULT now(),
    replayed_at     timestamptz,
    -- A dead letter redelivered by the broker is stored once.
    UNIQUE NULLS NOT DISTINCT (event_id, event_source, error_dest)
);

CREATE INDEX dead_letters_pending ON dead_letters (received_at) WHERE replayed_at IS NULL;
