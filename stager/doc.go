// Package stager orchestrates staging: it unpacks an app's source into a
// fresh sandbox, picks a buildpack, compiles under a timeout (killing the
// whole process group of build commands when it fires), and packs the
// droplet. Failures caused by the app come back as a Result with a typed
// api.BuildFailure and a reason for the user; an error means the platform
// itself failed.
//
// Worker consumes build jobs from the bus work queue exactly as a builder on
// another machine would: it fetches the source blob, stages it, streams each
// output line as a log envelope, uploads the droplet, and reports the result
// to the controller until the controller acknowledges it.
package stager
