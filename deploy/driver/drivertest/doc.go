// Package drivertest is the conformance suite every driver.Driver passes:
// exit codes, stop with grace, escalation to SIGKILL, the whole process tree
// dying with the instance, idempotent destroy, environment and working dir,
// and output capture. A driver's test calls Run with a constructor and the
// commands that exercise each case in the driver's own language.
package drivertest
