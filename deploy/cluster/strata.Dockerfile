# strata:dev — the image every process of the compose cluster runs
# (docker-compose.yml): the stack image containers run on, plus what the
# controllers' build workers and the executors' process driver need, plus
# the binaries built on the host. Built by deploy/cluster/images.sh
# (`make images`), never pulled: the stack comes from `make stack`.
ARG STACK=strata/stack:bookworm
FROM ${STACK}
# Not a stack: `stratad stack build` finds the stack by this label, which an
# image built FROM it inherits (deploy/driver/docker/stack.go).
LABEL io.strata.stack.content=""

# git for git pushes; python3 with venv and pip for the python buildpack
# (builder/python.go); iproute2 and iptables for the process driver's
# per-instance networks; curl for the health checks. Debian packages only.
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      git python3-venv python3-pip iproute2 iptables curl \
 && rm -rf /var/lib/apt/lists/*

# The Go toolchain of the machine that built the binaries (its GOROOT), for
# the Go buildpack (builder/gobuildpack.go: "go" on PATH).
COPY go /usr/local/go
# The machine's Node.js runtime with the npm beside it, for the nodejs
# buildpack, which copies both into node droplets (builder/node.go); empty
# when the machine has none (node apps then fail to build, saying so).
COPY node/ /usr/local/
RUN if [ -x /usr/local/bin/node ]; then ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm && node --version; fi
ENV PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

COPY bin/ /usr/local/bin/
COPY cluster-init.sh /usr/local/bin/strata-cluster-init
COPY node-init.sh /usr/local/bin/strata-node-init
RUN stratad version
CMD ["stratad", "-h"]
