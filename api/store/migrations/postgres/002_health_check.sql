-- Health check of each process type: type ('' = port for web, process for
-- others), the path of an http check and the start-up timeout in seconds
-- (0 = the executor default).
ALTER TABLE processes ADD COLUMN health_check_type TEXT NOT NULL DEFAULT '';
ALTER TABLE processes ADD COLUMN health_check_path TEXT NOT NULL DEFAULT '';
ALTER TABLE processes ADD COLUMN health_check_timeout INTEGER NOT NULL DEFAULT 0;
