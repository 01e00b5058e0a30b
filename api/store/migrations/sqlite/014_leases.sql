-- Leases (docs/architecture.md, "Leader lease"): one row per lease, taken
-- and renewed by one upsert that reads only the database clock. The term
-- increases whenever the holder changes; fenced writes check holder, term
-- and expiry in their own transaction. expires_at is a julianday (days,
-- REAL) of SQLite's clock, compared with julianday('now').

CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    term       INTEGER NOT NULL,
    expires_at REAL NOT NULL
);
