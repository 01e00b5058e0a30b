package main

import (
	"github.com/strata-paas/strata/deploy/driver/docker"
	"github.com/strata-paas/strata/stager"
)

// dockerfileBuilder is what builds apps that have a Dockerfile: the Docker
// engine of this host (DOCKER_HOST or the default socket), reached on the
// first such build, so a builder without an engine still starts and fails
// only those builds, saying why (docs/containers.md).
func dockerfileBuilder() stager.ImageBuilder { return docker.NewImageBuilder("") }
