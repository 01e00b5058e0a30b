-- Quotas of orgs and spaces: total memory (MB) and instances of the apps'
-- formations, number of apps, number of routes. 0 is unlimited. scope is
-- 'org' or 'space'; owner_id the org's or space's id.

CREATE TABLE quotas (
    scope      TEXT NOT NULL,
    owner_id   TEXT NOT NULL,
    memory_mb  INTEGER NOT NULL DEFAULT 0,
    instances  INTEGER NOT NULL DEFAULT 0,
    apps       INTEGER NOT NULL DEFAULT 0,
    routes     INTEGER NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, owner_id)
);
