package storetest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/controller"
)

// testIdempotency checks idempotent responses: a key is reserved once,
// seen pending by a second request, replayed once finished, free again
// after an abort or its expiry.
func testIdempotency(t *testing.T, cs controller.Store) {
	s, ok := cs.(api.IdempotencyStore) // api/httpapi uses it
	if !ok {
		t.Fatalf("%T does not keep idempotent responses", cs)
	}
	ctx := context.Background()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	key := id()

	_, fresh, err := s.BeginIdempotent(ctx, "", now, now.Add(time.Minute))
	wantCode(t, "empty key", err, api.EInvalid)
	if _, fresh, err = s.BeginIdempotent(ctx, key, now, now.Add(time.Minute)); err != nil || !fresh {
		t.Fatalf("first Begin = %v, %v; want fresh", fresh, err)
	}
	got, fresh, err := s.BeginIdempotent(ctx, key, now, now.Add(time.Minute))
	if err != nil || fresh || got == nil || !got.Pending {
		t.Fatalf("Begin while pending = %+v, %v, %v; want the pending entry", got, fresh, err)
	}
	want := &api.IdempotentResponse{Status: 201, ContentType: "application/json", Body: []byte(`{"name":"hello"}`), Digest: bytes.Repeat([]byte{7}, 32)}
	must(t, "Finish", s.FinishIdempotent(ctx, key, want, now.Add(time.Hour)))
	got, fresh, err = s.BeginIdempotent(ctx, key, now.Add(30*time.Minute), now.Add(31*time.Minute))
	if err != nil || fresh || got.Pending || got.Status != 201 || got.ContentType != want.ContentType || !bytes.Equal(got.Body, want.Body) || !bytes.Equal(got.Digest, want.Digest) {
		t.Fatalf("Begin after Finish = %+v, %v, %v; want the stored response", got, fresh, err)
	}
	// Expired: reserved afresh.
	if _, fresh, err = s.BeginIdempotent(ctx, key, now.Add(2*time.Hour), now.Add(2*time.Hour+time.Minute)); err != nil || !fresh {
		t.Fatalf("Begin after expiry = %v, %v; want fresh", fresh, err)
	}
	// An abort frees a pending key; it does not remove a finished one.
	must(t, "Abort", s.AbortIdempotent(ctx, key))
	if _, fresh, err = s.BeginIdempotent(ctx, key, now.Add(2*time.Hour), now.Add(3*time.Hour)); err != nil || !fresh {
		t.Fatalf("Begin after Abort = %v, %v; want fresh", fresh, err)
	}
	must(t, "Finish", s.FinishIdempotent(ctx, key, want, now.Add(4*time.Hour)))
	must(t, "Abort of a finished key", s.AbortIdempotent(ctx, key))
	if got, fresh, err = s.BeginIdempotent(ctx, key, now.Add(3*time.Hour), now.Add(3*time.Hour)); err != nil || fresh || got.Status != 201 {
		t.Fatalf("Begin after aborting a finished key = %+v, %v, %v; want the stored response", got, fresh, err)
	}
	// A pending key whose first request died expires too.
	other := id()
	if _, fresh, err = s.BeginIdempotent(ctx, other, now, now.Add(time.Minute)); err != nil || !fresh {
		t.Fatalf("Begin(other) = %v, %v", fresh, err)
	}
	if _, fresh, err = s.BeginIdempotent(ctx, other, now.Add(2*time.Minute), now.Add(3*time.Minute)); err != nil || !fresh {
		t.Fatalf("Begin(other) after its pending time = %v, %v; want fresh", fresh, err)
	}
}
