// Package api is Strata's contract: the domain types shared by every
// component, the one error type with codes, the NATS subjects and their
// message structs, and the service interfaces that adapters implement and
// consume.
//
// api imports the standard library only. Everything else in Strata may import
// it; siblings (controller, executor, router, builder) talk to each other
// through these types and never through each other's internals.
package api
