// Package controller implements Strata's control-plane use cases: auth,
// apps, push → stage → release → roll out, the node registry (heartbeats),
// the converger and its plan applier (the only writer of instance rows), and
// the log service. It persists through Store (api/store), stores blobs in an
// api.BlobStore and talks to builders and executors over api/bus.
//
// Desired state lives in the Store; the controller keeps only soft state in
// memory (latest heartbeats, log rings, build waiters), all of which is
// rebuilt after a restart. Destructive actions (stopping instances that no
// row knows) wait for the fresh-state gate: the controller has run for
// 2×NodeTTL and the database read of the same pass succeeded.
//
// Formation defaults: a new app gets web=1 (api.DefaultMemoryMB). When a
// release introduces a process type the formation has not seen, web gets 1
// instance and other types 0 (as Heroku does) — unless the release has no web
// process, in which case every new type gets 1 so the app runs at all.
package controller
