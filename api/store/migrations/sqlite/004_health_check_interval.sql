-- How often a running instance's health check is repeated, in seconds
-- (0 = the executor default, 1 s).
ALTER TABLE processes ADD COLUMN health_check_interval INTEGER NOT NULL DEFAULT 0;
