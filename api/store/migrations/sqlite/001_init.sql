-- Strata schema, version 1 (SQLite). Timestamps are UTC, written by the
-- store; the declared type TIMESTAMP makes the driver return time.Time.

CREATE TABLE orgs (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE spaces (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES orgs (id),
    name       TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE users (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    admin      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL
);

-- tokens holds only the SHA-256 hex hash of each API token.
CREATE TABLE tokens (
    hash        TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    description TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMP NOT NULL
);
CREATE INDEX tokens_user_id ON tokens (user_id);

CREATE TABLE apps (
    id              TEXT PRIMARY KEY,
    space_id        TEXT NOT NULL REFERENCES spaces (id),
    name            TEXT NOT NULL,
    state           TEXT NOT NULL,
    current_release INTEGER NOT NULL DEFAULT 0,
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL,
    UNIQUE (space_id, name)
);

-- seq orders rows created within the same timestamp.
CREATE TABLE builds (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    app_id       TEXT NOT NULL REFERENCES apps (id),
    state        TEXT NOT NULL,
    source_blob  TEXT NOT NULL DEFAULT '',
    droplet_blob TEXT NOT NULL DEFAULT '',
    buildpack    TEXT NOT NULL DEFAULT '',
    failure      TEXT NOT NULL DEFAULT '',
    reason       TEXT NOT NULL DEFAULT '',
    actor        TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL
);
CREATE INDEX builds_app_created ON builds (app_id, created_at);
CREATE INDEX builds_state ON builds (state, created_at);

-- process_types and env are JSON objects (string to string) as text.
CREATE TABLE releases (
    id            TEXT PRIMARY KEY,
    app_id        TEXT NOT NULL REFERENCES apps (id),
    version       INTEGER NOT NULL,
    build_id      TEXT NOT NULL DEFAULT '',
    droplet_blob  TEXT NOT NULL DEFAULT '',
    process_types TEXT NOT NULL DEFAULT '{}',
    env           TEXT NOT NULL DEFAULT '{}',
    description   TEXT NOT NULL DEFAULT '',
    actor         TEXT NOT NULL DEFAULT '',
    created_at    TIMESTAMP NOT NULL,
    UNIQUE (app_id, version)
);

CREATE TABLE processes (
    app_id    TEXT NOT NULL REFERENCES apps (id),
    type      TEXT NOT NULL,
    instances INTEGER NOT NULL,
    memory_mb INTEGER NOT NULL,
    disk_mb   INTEGER NOT NULL,
    PRIMARY KEY (app_id, type)
);

CREATE TABLE instances (
    id              TEXT PRIMARY KEY,
    app_id          TEXT NOT NULL REFERENCES apps (id),
    process         TEXT NOT NULL,
    instance_index  INTEGER NOT NULL,
    release_version INTEGER NOT NULL,
    node_id         TEXT NOT NULL DEFAULT '',
    state           TEXT NOT NULL,
    port            INTEGER NOT NULL DEFAULT 0,
    reason          TEXT NOT NULL DEFAULT '',
    restarts        INTEGER NOT NULL DEFAULT 0,
    started_at      TIMESTAMP NULL,
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL
);
CREATE INDEX instances_app ON instances (app_id);

CREATE TABLE routes (
    id     TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id),
    host   TEXT NOT NULL,
    path   TEXT NOT NULL DEFAULT '',
    UNIQUE (host, path)
);
CREATE INDEX routes_app ON routes (app_id);

-- events outlive their app: no foreign key.
CREATE TABLE events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    app_id     TEXT NOT NULL,
    type       TEXT NOT NULL,
    actor      TEXT NOT NULL DEFAULT '',
    message    TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX events_app_created ON events (app_id, created_at);
