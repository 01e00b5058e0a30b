# strata/postgres:dev — PostgreSQL from Debian's packages on the stack image,
# for the compose cluster (docker-compose.yml). Built by
# deploy/cluster/images.sh (`make images`), never pulled.
ARG STACK=strata/stack:bookworm
FROM ${STACK}
# Not a stack: `stratad stack build` finds the stack by this label, which an
# image built FROM it inherits (deploy/driver/docker/stack.go).
LABEL io.strata.stack.content=""
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/strata-postgres
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data
VOLUME /var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/strata-postgres"]
