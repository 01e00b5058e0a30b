-- Idempotent responses (api.IdempotencyStore): key is the SHA-256 of the
-- principal, method, path and Idempotency-Key; times are Unix microseconds.
CREATE TABLE idempotency_keys (
    key          TEXT PRIMARY KEY,
    pending      BOOLEAN NOT NULL,
    status       INTEGER NOT NULL DEFAULT 0,
    content_type TEXT NOT NULL DEFAULT '',
    body         BYTEA NOT NULL,
    digest       BYTEA NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);
