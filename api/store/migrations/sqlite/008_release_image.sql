-- Image deploys: a release runs an image reference the nodes' engines have
-- (image) or a `docker save` tarball in the blob store (image_blob) instead
-- of a droplet.

ALTER TABLE releases ADD COLUMN image TEXT NOT NULL DEFAULT '';
ALTER TABLE releases ADD COLUMN image_blob TEXT NOT NULL DEFAULT '';
