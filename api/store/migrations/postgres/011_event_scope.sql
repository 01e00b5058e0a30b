-- Events record the org and space they happened in; org-level events
-- (roles, quotas, spaces) have no app (app_id '').

ALTER TABLE events ADD COLUMN org_id TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN space_id TEXT NOT NULL DEFAULT '';
CREATE INDEX events_org_created ON events (org_id, created_at);
