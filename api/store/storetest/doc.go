// Package storetest is the conformance suite for controller.Store. Every
// implementation runs it:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) controller.Store { return openFresh(t) })
//	}
//
// open must return an empty, migrated store private to the calling test and
// close it in t.Cleanup. The suite checks results and *api.Error codes of
// every method, ordering guarantees, cascade deletes, and concurrent writers
// and releases.
package storetest
