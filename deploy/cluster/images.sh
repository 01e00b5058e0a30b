#!/usr/bin/env bash
# deploy/cluster/images.sh — `make images`: builds, with the local Docker
# engine and nothing pulled, the images of the compose cluster
# (docker-compose.yml):
#   strata:dev           the stack image strata/stack:bookworm (`make stack`),
#                        git, python3 venv/pip, iproute2, iptables, this
#                        machine's Go toolchain and Node.js runtime (for the
#                        buildpacks) and the binaries built here with
#                        CGO_ENABLED=0;
#   strata/postgres:dev  PostgreSQL from Debian's packages on the same stack.
# Each image carries the hash of its inputs in the label
# io.strata.image.content; an image whose label matches is not rebuilt.
set -euo pipefail
cd "$(dirname "$0")/../.."

GO=${GO:-go}
VERSION=${VERSION:-$(git describe --always --dirty 2>/dev/null || echo dev)}
STRATA_IMAGE=${STRATA_IMAGE:-strata:dev}
POSTGRES_IMAGE=${POSTGRES_IMAGE:-strata/postgres:dev}
STACK_IMAGE=strata/stack:bookworm
LABEL=io.strata.image.content
export DOCKER_BUILDKIT=0 # the classic builder: docker 20.10 without buildx

docker info >/dev/null 2>&1 || { echo "images: no Docker engine answers — start dockerd" >&2; exit 1; }
# The stack (skipped when an image of its recipe exists).
"$GO" run ./cmd/stratad stack build
stack_id=$(docker image inspect -f '{{.Id}}' "$STACK_IMAGE")

work=$(mktemp -d "${TMPDIR:-/tmp}/strata-images.XXXXXX")
trap 'rm -rf "$work"' EXIT

# content FILE… — the hash of the files' contents (and names) with the stack.
content() {
	{ echo "stack $stack_id"; (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum); } | sha256sum | cut -c1-64
}
# build IMAGE DOCKERFILE CONTEXT — docker build unless IMAGE has the content.
build() {
	local image=$1 dockerfile=$2 ctx=$3 sum have
	sum=$(content "$ctx")
	have=$(docker image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$image" 2>/dev/null || true)
	if [ "$have" = "$sum" ]; then
		echo "image $image is up to date (content ${sum:0:12})"
		return
	fi
	echo "building image $image (content ${sum:0:12})"
	docker build --build-arg STACK="$STACK_IMAGE" --label "$LABEL=$sum" -t "$image" -f "$dockerfile" "$ctx"
}

# strata:dev. The Go toolchain is hashed by its version and go binary, not
# file by file (270 MB): it is hard-linked (else copied) into the context
# only when the image is rebuilt.
ctx="$work/strata"
mkdir -p "$ctx/bin"
CGO_ENABLED=0 "$GO" build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o "$ctx/bin/" \
	./cmd/strata ./cmd/stratad ./cmd/strata-static
cp deploy/cluster/strata.Dockerfile "$ctx/Dockerfile"
cp deploy/cluster/cluster-init.sh deploy/cluster/node-init.sh "$ctx/"
# Node.js as the nodejs buildpack finds it: node, and npm at
# <node's dir>/../lib/node_modules/npm (builder/node.go).
mkdir -p "$ctx/node/bin" "$ctx/node/lib/node_modules"
if node=$(command -v node) && node=$(readlink -f "$node") && npm="$(dirname "$(dirname "$node")")/lib/node_modules/npm" && [ -f "$npm/bin/npm-cli.js" ]; then
	cp "$node" "$ctx/node/bin/node"
	cp -a "$npm" "$ctx/node/lib/node_modules/npm"
else
	echo "images: no node with npm beside it on this machine — strata:dev gets no Node.js, so node apps will not build" >&2
fi
goroot=$("$GO" env GOROOT)
{ cat "$goroot/VERSION"; sha256sum <"$goroot/bin/go"; } >"$ctx/go.id"
sum=$(content "$ctx")
have=$(docker image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$STRATA_IMAGE" 2>/dev/null || true)
if [ "$have" != "$sum" ]; then
	cp -al "$goroot" "$ctx/go" 2>/dev/null || cp -a "$goroot" "$ctx/go"
	rm -f "$ctx/go.id"
	echo "building image $STRATA_IMAGE (content ${sum:0:12})"
	docker build --build-arg STACK="$STACK_IMAGE" --label "$LABEL=$sum" -t "$STRATA_IMAGE" -f "$ctx/Dockerfile" "$ctx"
else
	echo "image $STRATA_IMAGE is up to date (content ${sum:0:12})"
fi

# strata/postgres:dev.
ctx="$work/postgres"
mkdir -p "$ctx"
cp deploy/cluster/postgres.Dockerfile "$ctx/Dockerfile"
cp deploy/cluster/postgres-entrypoint.sh "$ctx/"
build "$POSTGRES_IMAGE" "$ctx/Dockerfile" "$ctx"
