-- The isolation the scheduler chose for an instance (process, container,
-- microvm; '' = the node's process driver), sent in every start command of
-- it so that a re-sent start runs it the same way.

ALTER TABLE instances ADD COLUMN isolation TEXT NOT NULL DEFAULT '';
