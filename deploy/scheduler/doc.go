// Package scheduler is Strata's pure placement function: Plan takes a
// Snapshot (live nodes with their load, the desired formation of every app,
// and the current placements) and returns a Result: instances to place, to
// stop, and desired instances that cannot be placed (with a reason). It does
// no I/O and keeps no state; the controller's plan applier is the only writer
// of placement state.
//
// Rules:
//   - every (app, process, index < count) at the formation's release has one
//     placement; duplicates are stopped;
//   - instances with index ≥ count, of a process or app that is no longer
//     desired, or in state stopping/stopped are stopped;
//   - rolling: an old-release instance at index i is stopped only once the
//     new-release instance at index i is running;
//   - instances on a draining node, or on a node that no longer matches the
//     formation's policy, are moved like an old release: each is
//     replaced on another node and stopped once its replacement is running
//     (kept while no other node can take it);
//   - instances on a lost node are stopped and re-placed; instances on a node
//     absent from the snapshot (not heard from yet) are left alone;
//   - placement spreads an app's instances (fewest instances of this app
//     first, then least memory used, then node id), respects memory capacity
//     times Snapshot.Overcommit, uses only ready nodes, and honours the
//     policy's substrate, isolation and labels ("any"/empty = anything).
package scheduler
