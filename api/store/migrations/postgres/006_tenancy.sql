-- Tenancy: password logins, expiring tokens and roles. password_hash is an
-- encoded argon2id hash ('' = no password login); a token with expires_at
-- NULL never expires (the bootstrap admin token). A role row binds a user to
-- an org (space_id '') or to one space of it.

ALTER TABLE users ADD COLUMN password_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN expires_at TIMESTAMPTZ NULL;

CREATE TABLE roles (
    user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    org_id   TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    space_id TEXT NOT NULL DEFAULT '',
    role     TEXT NOT NULL,
    PRIMARY KEY (user_id, org_id, space_id, role)
);
CREATE INDEX roles_org_id ON roles (org_id);
