package controllertest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"sync"

	"github.com/strata-paas/strata/api"
)

var _ api.BlobStore = (*Blobs)(nil)

// Blobs is an in-memory api.BlobStore. Safe for concurrent use.
type Blobs struct {
	mu sync.Mutex
	m  map[api.BlobRef][]byte
}

// NewBlobs returns an empty Blobs.
func NewBlobs() *Blobs { return &Blobs{m: map[api.BlobRef][]byte{}} }

// Put implements api.BlobStore.
func (b *Blobs) Put(ctx context.Context, r io.Reader) (api.BlobRef, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	ref := api.BlobRef("sha256:" + hex.EncodeToString(sum[:]))
	b.mu.Lock()
	b.m[ref] = data
	b.mu.Unlock()
	return ref, nil
}

// Get implements api.BlobStore.
func (b *Blobs) Get(_ context.Context, ref api.BlobRef) (io.ReadCloser, error) {
	if !ref.Valid() {
		return nil, api.Errorf(api.EInvalid, "malformed blob ref %q", ref)
	}
	b.mu.Lock()
	data, ok := b.m[ref]
	b.mu.Unlock()
	if !ok {
		return nil, api.Errorf(api.ENotFound, "blob %s not found", ref)
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// Delete implements api.BlobStore.
func (b *Blobs) Delete(_ context.Context, ref api.BlobRef) error {
	if !ref.Valid() {
		return api.Errorf(api.EInvalid, "malformed blob ref %q", ref)
	}
	b.mu.Lock()
	delete(b.m, ref)
	b.mu.Unlock()
	return nil
}
