# Strata — the two commands a newcomer needs are `make run` and `make test`.
GO      ?= go
BIN     ?= bin
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# Extra flags for `make run`, e.g. make run ARGS="--data /tmp/strata".
ARGS    ?=

.PHONY: build run test test-short lint bench bench-push bench-micro bench-router bench-build bench-isolations stack screenshots clean

## build: the three binaries into ./bin (pure Go, no cgo)
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/strata ./cmd/stratad ./cmd/strata-static ./cmd/strata-guest-init

## run: build and start a microcloud on this machine
run: build
	$(BIN)/stratad microcloud $(ARGS)

## test: everything CI runs — vet, unit tests, end-to-end tests
test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 45m ./...

## test-short: unit tests only (skips the end-to-end package)
test-short:
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /e2e)

## lint: gofmt, go vet and staticcheck
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@2026.2.2 ./...

## bench: push-to-live, start time and idle memory of the microcloud, node and leader failover, API req/s through one and three controllers, then micro-benchmarks
bench: bench-push bench-micro bench-router bench-build bench-isolations

bench-push:
	$(GO) test -count=1 -run '^$$' -bench 'BenchmarkMicrocloud|BenchmarkFailover|BenchmarkOperate|BenchmarkLeaderFailover|BenchmarkAPIControllers' -benchtime 1x -timeout 40m ./e2e/

bench-micro:
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 2s ./router/... ./deploy/scheduler/...

## bench-isolations: process, container and microVM instances of the same app side by side: requests/s through the router and scale → running on one microcloud, then start and requests/s at the driver (needs a Docker engine, `make stack` and QEMU; STRATA_BENCH_ISOLATIONS=process,container leaves microVMs out)
bench-isolations:
	$(GO) test -count=1 -run '^$$' -bench BenchmarkIsolationsRouter -benchtime 1x -timeout 40m ./e2e/
	$(GO) test -count=1 -run '^$$' -bench ContainerVsProcess -benchtime 5x ./deploy/driver/docker/
	$(GO) test -count=1 -run '^$$' -bench BootVsProcess -benchtime 3x ./deploy/driver/microvm/

## bench-build: the second build of an app with its build cache against the same build without, side by side
bench-build:
	$(GO) test -count=1 -run '^$$' -bench BenchmarkRebuild -benchtime 3x -timeout 30m ./stager/

## bench-router: the router against nginx and the bare backend with wrk (installs nginx-light and wrk
## from Debian if missing), then route propagation/removal times. ROUTERBENCH="-duration 5s -cpuprofile router.prof";
## "-cores 2": two cores each (shared with backend and wrk on a 2-core machine); "-gorouter PATH": a
## gorouter binary you built, as a third peer (never built here; skipped with a note if PATH is absent)
ROUTERBENCH ?=
bench-router:
	@if ! command -v wrk >/dev/null || ! { command -v nginx >/dev/null || test -x /usr/sbin/nginx; }; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y nginx-light wrk; fi
	$(GO) run ./router/routerbench $(ROUTERBENCH)

clean:
	rm -rf $(BIN)

## screenshots: refresh docs/console/*.png from the console's browser test (needs chromium)
screenshots:
	STRATA_SCREENSHOTS=$(CURDIR)/docs/console $(GO) test -count=1 -run '^TestConsole$$' -timeout 20m ./e2e/

## stack: build the stack image strata/stack:bookworm that containers run on (mmdebstrap + docker import; skipped when an image of the same content exists)
stack:
	$(GO) run ./cmd/stratad stack build

## images: the compose cluster's images strata:dev and strata/postgres:dev, built locally from the stack (nothing pulled; skipped when their inputs' hash matches)
.PHONY: images cluster-up cluster-down
images:
	GO=$(GO) VERSION=$(VERSION) deploy/cluster/images.sh

## cluster-up: start the compose cluster (PostgreSQL, three controllers in one NATS cluster, two routers, three executors); prints the API address and the login command
cluster-up:
	deploy/cluster/up.sh

## cluster-down: remove the compose cluster: containers, networks and volumes
cluster-down:
	docker-compose -p strata down -v --remove-orphans
