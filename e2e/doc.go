// Package e2e holds Strata's end-to-end tests and push benchmarks. They build
// the real binaries (strata, stratad, strata-static), start them as child
// processes on free loopback ports with data in temporary directories, and
// drive them the way users do: the strata CLI, the real git client, and HTTP
// requests through the router.
//
// The tests need git and the Go toolchain (the Go buildpack compiles apps with
// it). Without them they skip, unless CI=true or STRATA_REQUIRE is set, in
// which case they fail.
package e2e
