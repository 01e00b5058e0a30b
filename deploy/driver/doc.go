// Package driver is the contract between an executor and the things that run
// instances on one node: processes (driver/process), containers of the
// node's Docker engine (driver/docker), micro-VMs later, and a scripted fake
// (driver/mock) for tests. An executor holds one driver per isolation it
// offers.
//
// A Driver starts an instance from a Spec, reports its exit through Wait,
// stops it with SIGTERM → grace → SIGKILL, cleans up with Destroy, and
// re-attaches to instances that survived an executor restart with Recover,
// using the Handle the executor persisted. The driver owns the instance's
// network: it chooses the port the instance listens on (PortAllocator) and
// Start returns where the node reaches it (Handle.Endpoint). Optional
// abilities (Fingerprinter, OutputRecoverer, PortAllocator, UsageReporter,
// Sweeper, DropletImager) are separate small interfaces found by type
// assertion.
//
// The drivers share their exit bookkeeping: an instance record embeds a
// Lifecycle (exited, done, the result, Stopping and Killed), the driver's
// Wait and Stop are WaitFor and StopFor over its instance map, and Start,
// Recover and Destroy use Claim, Add, Find and Forget; only how an instance
// is signalled and how its exit is learned stay in each driver.
//
// Every driver passes the conformance suite in driver/drivertest.
package driver
