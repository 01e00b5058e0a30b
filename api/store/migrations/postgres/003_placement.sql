-- Placement policies and node drain. A policy belongs to an org, a space or
-- an app (scope + owner_id, no foreign key because the owner table varies);
-- labels is a JSON object (string to string) as text. A node listed in
-- node_drains takes no new placements and has its instances moved away.

CREATE TABLE placements (
    scope      TEXT NOT NULL,
    owner_id   TEXT NOT NULL,
    substrate  TEXT NOT NULL DEFAULT '',
    isolation  TEXT NOT NULL DEFAULT '',
    labels     TEXT NOT NULL DEFAULT '{}',
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, owner_id)
);

CREATE TABLE node_drains (
    node_id    TEXT PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL
);
