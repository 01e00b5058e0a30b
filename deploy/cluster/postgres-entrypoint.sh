#!/bin/sh
# Entry point of strata/postgres:dev: on first start, initialise $PGDATA and
# create the role POSTGRES_USER (password POSTGRES_PASSWORD) owning the
# database POSTGRES_DB; then run the server as the postgres user, listening
# on every address with password (scram-sha-256) authentication.
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:?set POSTGRES_USER, the role to create}"
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD, the password of POSTGRES_USER}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

mkdir -p "$PGDATA"
chown postgres:postgres "$PGDATA"
chmod 0700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
	as_postgres initdb -D "$PGDATA" --username=postgres --auth-local=peer --auth-host=scram-sha-256 \
		--encoding=UTF8 --locale=C.UTF-8 >/dev/null
	{
		echo "listen_addresses = '*'"
		echo "unix_socket_directories = '/tmp'"
		echo "password_encryption = 'scram-sha-256'"
	} >>"$PGDATA/postgresql.conf"
	echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
	# Create the role and database on a server that listens only on its
	# socket, so nothing connects before they exist.
	as_postgres pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
	# psql variables quote the name and password (:"v" and :'v').
	as_postgres psql -h /tmp -U postgres -v ON_ERROR_STOP=1 -q \
		-v user="$POSTGRES_USER" -v pass="$POSTGRES_PASSWORD" -v db="$POSTGRES_DB" <<'SQL'
CREATE ROLE :"user" LOGIN PASSWORD :'pass';
CREATE DATABASE :"db" OWNER :"user";
SQL
	as_postgres pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
	echo "strata-postgres: initialised $PGDATA with role $POSTGRES_USER and database $POSTGRES_DB"
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -D "$PGDATA"
