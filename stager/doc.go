// Package stager orchestrates staging: it unpacks an app's source into a
// fresh sandbox, picks the buildpacks (the job's named ones, or the first of
// the custom and built-in buildpacks to detect), compiles under a timeout
// (killing every process of the build when it fires), and packs the
// droplet. Failures caused by the app come back as a Result with a typed
// api.BuildFailure and a reason for the user; an error means the platform
// itself failed.
//
// Each app has a build cache that persists between builds, size-capped with
// the least recently used caches evicted first; a NoCache job builds without
// it. When the builder can, every build command runs confined with the
// process driver's instance confinement (package
// deploy/driver/process/isolate) as an unprivileged user that cannot see the
// data directory. See docs/buildpacks.md.
//
// Worker consumes build jobs from the bus work queue exactly as a builder on
// another machine would: it fetches the source blob, stages it, streams each
// output line as a log envelope, uploads the droplet, and reports the result
// to the controller until the controller acknowledges it.
package stager
