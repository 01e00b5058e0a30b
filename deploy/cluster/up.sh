#!/usr/bin/env bash
# deploy/cluster/up.sh — `make cluster-up`: starts the compose cluster
# (docker-compose.yml) from the images of `make images`, waits until every
# controller's API answers and the API answers through both routers at
# api.localhost (the route the controllers register), copies the admin token
# out and prints the API address and the login command.
set -euo pipefail
cd "$(dirname "$0")/../.."

PROJECT=strata
API=http://api.localhost:18080
ROUTERS=(http://127.0.0.1:18080 http://127.0.0.1:18081)
TOKEN_DIR=${XDG_DATA_HOME:-$HOME/.local/share}/strata-cluster
WAIT=${CLUSTER_WAIT:-240} # seconds

for img in strata:dev strata/postgres:dev; do
	docker image inspect "$img" >/dev/null 2>&1 || { echo "cluster-up: no image $img — run make images first" >&2; exit 1; }
done
docker-compose -p "$PROJECT" up -d

# ready URL CURL-ARGS… — true once curl succeeds against URL.
ready() { local url=$1; shift; curl -sS -o /dev/null --max-time 2 "$@" "$url" 2>/dev/null; }
deadline=$((SECONDS + WAIT))
pending=(17070 17071 17072 "${ROUTERS[@]}")
while [ ${#pending[@]} -gt 0 ]; do
	left=()
	for p in "${pending[@]}"; do
		case $p in
		http*) ready "$p/v1/info" -f -H "Host: api.localhost" || left+=("$p") ;; # the API through a router
		*) ready "http://127.0.0.1:$p/v1/info" -f || left+=("$p") ;;            # a controller directly
		esac
	done
	pending=("${left[@]+"${left[@]}"}")
	[ ${#pending[@]} -eq 0 ] && break
	if [ $SECONDS -ge $deadline ]; then
		echo "cluster-up: not answering after ${WAIT}s: ${pending[*]}" >&2
		docker-compose -p "$PROJECT" ps >&2
		docker-compose -p "$PROJECT" logs --tail 30 >&2
		exit 1
	fi
	sleep 2
done

mkdir -p "$TOKEN_DIR"
chmod 700 "$TOKEN_DIR"
docker-compose -p "$PROJECT" exec -T controller-1 cat /creds/admin.token >"$TOKEN_DIR/admin.token.tmp"
chmod 600 "$TOKEN_DIR/admin.token.tmp"
mv "$TOKEN_DIR/admin.token.tmp" "$TOKEN_DIR/admin.token"

cat <<MSG
Strata cluster is up (docker-compose -p $PROJECT ps)
  API:     $API   (any controller, through router-1; router-2 on :18081;
           controller-1, -2, -3 directly on 127.0.0.1:17070, :17071, :17072)
  apps:    http://<app>.localhost:18080
  login:   strata login --api $API --token-file $TOKEN_DIR/admin.token
  remove:  make cluster-down
MSG
