-- Component users (executor, router): the credentials of Strata's own parts,
-- each allowed only what that component needs ('' = a person).

ALTER TABLE users ADD COLUMN component TEXT NOT NULL DEFAULT '';
