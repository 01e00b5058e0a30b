-- Scale to zero (web only): seconds without requests before the app's web
-- instances are stopped (0 = never), and whether they are stopped for that
-- reason until a request wakes them.
ALTER TABLE processes ADD COLUMN scale_to_zero INTEGER NOT NULL DEFAULT 0;
ALTER TABLE processes ADD COLUMN sleeping BOOLEAN NOT NULL DEFAULT FALSE;
