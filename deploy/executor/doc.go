// Package executor is the node agent. It serves start/stop commands for its
// node over NATS, fetches droplets (cached by digest, sha256 verified while
// downloading), unpacks them per instance (or has a driver that runs images
// turn them into one), starts instances through the driver of their
// isolation (one driver.Driver per isolation the node offers; a spec without
// one goes to the process driver), health-checks them where the driver says
// they listen (port, http or process; polled quickly so a push goes live
// fast) and only then registers that endpoint with the routers (gorouter
// protocol, re-registered every router interval). It
// captures every output line into the app's log stream without ever blocking
// the app, restarts crashed instances in place (a few at once, then
// exponential backoff to a cap, reset after a healthy period), heartbeats the
// node and its instances, and after its own restart recovers the instances
// it persisted in <DataDir>/instances/<id>/handle.json, after which drivers
// that can (driver.Sweeper) remove this node's instances it does not know.
//
// Instance lifecycle (api.InstanceState):
//
//	starting ──▶ running ──▶ stopping ──▶ stopped
//	   │            │                        ▲
//	   ▼            ▼                        │
//	crashed ◀───────┘ ───────────────────────┘
//	   │
//	   └──▶ starting (restart in place)
//
// Stop order: routes are unregistered first, then the driver stops the
// instance (SIGTERM, grace, SIGKILL), then its directory is removed.
//
// Layout of DataDir:
//
//	node-id                        the node's stable id
//	droplets/<sha256>.tar.gz       droplet cache (the last few)
//	instances/<id>/handle.json     spec, driver handle, port
//	instances/<id>/droplet/        the unpacked droplet; droplet/app is the working dir, droplet is HOME
//	instances/<id>/tmp/            TMPDIR
//	images/                        the docker driver's saved stack (droplet images are built from it)
package executor
