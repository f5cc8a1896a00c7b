-- Identity and access: users, devices, platform service clients, refresh-token sessions, lockouts,
-- and the append-only, hash-chained audit log. Only the users service writes this database.

CREATE TABLE users (
    username        text PRIMARY KEY CHECK (username ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$'),
    password_hash   text NOT NULL,
    role            text NOT NULL CHECK (role IN ('admin', 'operator', 'analyst', 'viewer')),
    disabled        boolean NOT NULL DEFAULT false,
    failed_logins   int NOT NULL DEFAULT 0,
    locked_until    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Failed logins per client address (a password spray over many users).
CREATE TABLE address_lockouts (
    address         text PRIMARY KEY,
    failed_logins   int NOT NULL DEFAULT 0,
    locked_until    timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Sensors, meters and gateways; a meter may be registered behind a gateway (it sends through it).
-- A device with a secret is an OAuth client (client_credentials); the secret is stored hashed.
CREATE TABLE devices (
    device_id       text PRIMARY KEY CHECK (device_id ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$'),
    kind            text NOT NULL CHECK (kind IN ('sensor', 'meter', 'gateway')),
    gateway_id      text REFERENCES devices (device_id),
    secret_hash     text,
    revoked_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (gateway_id IS NULL OR kind = 'meter')
);
CREATE INDEX devices_by_gateway ON devices (gateway_id) WHERE gateway_id IS NOT NULL;

-- Platform services (the data plane, functions reading the registry, jobs): OAuth clients with roles.
CREATE TABLE service_clients (
    client_id       text PRIMARY KEY,
    secret_hash     text NOT NULL,
    roles           text[] NOT NULL,
    revoked_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Refresh tokens: one row per issued token, stored hashed. A family is one login; every refresh
-- rotates the token (the old row gets rotated_at), and a rotated token used again revokes the family.
CREATE TABLE sessions (
    token_hash      text PRIMARY KEY,
    family_id       uuid NOT NULL,
    username        text NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    client_id       text NOT NULL,
    issued_at       timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    rotated_at      timestamptz,
    revoked_at      timestamptz
);
CREATE INDEX sessions_by_family ON sessions (family_id);

-- The audit log: append-only (the trigger refuses UPDATE and DELETE), each row holding the hash of
-- the one before (shared/audit/chain.py). event_id deduplicates entries reported as CloudEvents.
CREATE TABLE audit_log (
    seq             bigint PRIMARY KEY,
    at              timestamptz NOT NULL,
    actor           text NOT NULL,
    action          text NOT NULL,
    target          text,
    outcome         text NOT NULL,
    source          text NOT NULL,
    detail          jsonb NOT NULL DEFAULT '{}',
    event_id        text UNIQUE,
    prev_hash       text NOT NULL,
    hash            text NOT NULL
);
CREATE INDEX audit_by_actor ON audit_log (actor, seq);
CREATE INDEX audit_by_time ON audit_log (at, seq);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP;
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
