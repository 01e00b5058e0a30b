#!/bin/sh
# strata-node-init COMMAND…: the entry point of the compose cluster's
# executors and controllers (docker-compose.yml). Docker mounts the
# container's own cgroup hierarchies read-only unless it is privileged (which
# the cluster avoids: a privileged container needs every capability, and a
# machine may not grant them all); with CAP_SYS_ADMIN they are made writable
# again here, so that the process driver and the build worker can put each
# instance and build in a cgroup of its own below the container's
# (docs/tenancy.md, "How tenants are kept apart"). The data dir
# ($STRATA_DATA, a volume whose root Docker makes 0755) is made 0700, so that
# confined builds and instances cannot read it. Then COMMAND runs.
set -eu
if [ -n "${STRATA_DATA:-}" ] && [ -d "$STRATA_DATA" ]; then
	chmod 0700 "$STRATA_DATA"
fi
# mountinfo: field 5 is the mount point; the file system type follows "-".
awk '{ for (i = 7; i < NF; i++) if ($i == "-") { if ($(i+1) == "cgroup" || $(i+1) == "cgroup2") print $5; break } }' /proc/self/mountinfo | while read -r point; do
	mount -o remount,bind,rw "$point" 2>/dev/null || echo "strata-node-init: cannot make $point writable; instances run unconfined" >&2
done
exec "$@"
