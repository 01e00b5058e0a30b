-- Domains routes may use besides the platform's: shared (org_id '') or
-- private to one org.

CREATE TABLE domains (
    name       TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL
);
