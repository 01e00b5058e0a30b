-- Leases (docs/architecture.md, "Leader lease"): one row per lease, taken
-- and renewed by one upsert that reads only the database clock (now()). The
-- term increases whenever the holder changes; fenced writes check holder,
-- term and expiry in their own transaction.

CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    term       BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
