package api

import (
	"context"
	"io"
	"strings"
)

// BlobRef names a content-addressed blob: "sha256:" followed by 64 lowercase
// hex digits of the blob's SHA-256.
type BlobRef string

// Digest returns the hex digest part of r.
func (r BlobRef) Digest() string { return strings.TrimPrefix(string(r), "sha256:") }

// Valid reports whether r is a well-formed sha256 reference.
func (r BlobRef) Valid() bool {
	d, ok := strings.CutPrefix(string(r), "sha256:")
	if !ok || len(d) != 64 {
		return false
	}
	for i := 0; i < len(d); i++ {
		c := d[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// BlobStore stores content-addressed blobs (source archives, droplets).
// Implementations are safe for concurrent use. Get returns an ENotFound
// *Error for a missing blob; every method returns EInvalid for a malformed ref.
type BlobStore interface {
	Put(ctx context.Context, r io.Reader) (BlobRef, error)
	Get(ctx context.Context, ref BlobRef) (io.ReadCloser, error)
	Delete(ctx context.Context, ref BlobRef) error
}
