package api

import (
	"context"
	"time"
)

// IdempotentResponse is what is kept of a request made with an
// Idempotency-Key: pending while the first request runs, then its status,
// content type, body and the digest of its request body.
type IdempotentResponse struct {
	Pending     bool
	Status      int
	ContentType string
	Body        []byte
	Digest      []byte
}

// IdempotencyStore keeps idempotent responses by key (a digest of the
// principal, method, path and Idempotency-Key) until they expire. Begin
// reserves a key as pending until pendingUntil and reports true, or returns
// the unexpired entry already there and false; Finish stores the response of
// a pending key until expires; Abort forgets a pending key. api/store keeps
// them in the database so every controller sees them; api/httpapi has an
// in-memory one for a server on its own.
type IdempotencyStore interface {
	BeginIdempotent(ctx context.Context, key string, now, pendingUntil time.Time) (*IdempotentResponse, bool, error)
	FinishIdempotent(ctx context.Context, key string, r *IdempotentResponse, expires time.Time) error
	AbortIdempotent(ctx context.Context, key string) error
}
