#!/bin/sh
# strata-cluster-init: the compose cluster's one-shot init service
# (docker-compose.yml). Into the credentials directory $1 it writes, once,
# the NATS cluster secret every controller's embedded server shares, then
# runs `stratad controller --init-only` against the database: migrations,
# the admin and its token, the executor, router and builder credentials and
# the secret key, which every controller then reads from the same
# directory instead of racing to create them. Then it copies each
# FILE:DIR of $CLUSTER_INIT_COPY (space-separated) into DIR, so that an
# executor or a router mounts only its own credential. Safe to run again:
# what exists is kept.
set -eu
creds=${1:?usage: strata-cluster-init CREDENTIALS_DIR [stratad controller flags]}
shift
umask 077
mkdir -p "$creds"
if [ ! -s "$creds/nats-cluster.secret" ]; then
	head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$creds/nats-cluster.secret.tmp"
	mv "$creds/nats-cluster.secret.tmp" "$creds/nats-cluster.secret"
fi
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
# No NATS listener, no API listener that anyone uses: this run only writes.
stratad controller --init-only --data "$data" --credentials-dir "$creds" \
	--nats-listen= --api-addr 127.0.0.1:0 --builder=false "$@"
for pair in ${CLUSTER_INIT_COPY:-}; do
	file=${pair%%:*} dir=${pair#*:}
	mkdir -p "$dir"
	cp "$creds/$file" "$dir/$file.tmp"
	mv "$dir/$file.tmp" "$dir/$file"
done
echo "strata-cluster-init: credentials ready in $creds"
