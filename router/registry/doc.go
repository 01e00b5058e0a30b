// Package registry is the router's route table, fed by the Cloud Foundry
// gorouter NATS protocol (router.register / router.unregister).
//
// A Registry owns the mutable state: one lease per (uri, ip:port), renewed by
// every re-registration and dropped by Prune when it is not renewed within
// its stale threshold. After every change the Registry builds a new immutable
// Table and swaps it in atomically, so Lookup — the proxy's hot path — takes
// no lock and does not allocate.
//
// Safety rules (docs/reliability.md rules 5 and 6):
//   - An ip:port registered with a new private_instance_id belongs to the new
//     instance only: every route of the old instance at that address is
//     dropped at once, so a reused port never serves another app's host.
//   - An unregister naming another instance than the one at that address
//     leaves that endpoint alone (it is a late message about an instance
//     that is gone).
//   - A route that loses its last endpoint to an unregister (an instance
//     stopping or restarting) stays known, so the proxy holds its requests;
//     an unregister with Forget (the route was unmapped from the app) drops
//     it at once, so it answers 404.
//   - While pruning is suspended (the NATS connection is down) nothing is
//     pruned; on resume every lease is renewed, so a bus outage never empties
//     the table.
//
// A registration with Sleeping (scale to zero) keeps its routes known without
// endpoints for its lease; the proxy holds their requests and asks for a
// wake-up (activity.go). Every request records its second in its route's
// activity, which Table.Activity samples.
//
// Watch gives a channel closed by the next publish that changes a host's
// routes; held requests wait on it instead of polling.
//
// Subscribe wires a Registry to the bus.
package registry
