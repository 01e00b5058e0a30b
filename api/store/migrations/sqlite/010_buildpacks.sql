-- Classic buildpacks admins register (strata buildpacks): the gzip tar of
-- each one's directory is a blob; position orders detection (1 first).

CREATE TABLE buildpacks (
    name       TEXT PRIMARY KEY,
    position   INTEGER NOT NULL,
    blob       TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
