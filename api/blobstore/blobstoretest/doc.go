// Package blobstoretest is the conformance suite every api.BlobStore
// passes: the file store (api/blobstore) and the NATS object store
// (api/bus). Run checks the contract of api.BlobStore as the file store
// defines it: "sha256:" references of the content, a round trip of empty,
// small and multi-MiB blobs, a second Put of present content returning the
// same reference, ENotFound for a missing blob, EInvalid for a malformed
// reference, Delete (idempotent, and a deleted blob can be stored again),
// concurrent Puts of the same content, and failed Puts that store nothing.
package blobstoretest
