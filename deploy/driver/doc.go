// Package driver is the contract between an executor and the things that run
// instances on one node: plain processes (driver/process), containers and
// micro-VMs later, and a scripted fake (driver/mock) for tests.
//
// A Driver starts an instance from a Spec, reports its exit through Wait,
// stops it with SIGTERM → grace → SIGKILL, cleans up with Destroy, and
// re-attaches to instances that survived an executor restart with Recover,
// using the Handle the executor persisted. Optional abilities (Fingerprinter,
// OutputRecoverer) are separate small interfaces found by type assertion.
//
// Every driver passes the conformance suite in driver/drivertest.
package driver
