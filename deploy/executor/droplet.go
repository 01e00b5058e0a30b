package executor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/strata-paas/strata/api"
)

// BlobFetcher fetches blobs by reference; api/client implements it over HTTP
// and a blob store can implement it directly.
type BlobFetcher interface {
	GetBlob(ctx context.Context, ref api.BlobRef) (io.ReadCloser, error)
}

// dropletCache keeps fetched droplets under dir by digest. Concurrent
// acquisitions of one droplet fetch it once; droplets in use are never pruned.
type dropletCache struct {
	dir   string
	blobs BlobFetcher
	keep  int
	// stall ends a fetch that receives nothing for this long (the blob
	// store's server died mid-transfer, say): the start fails and is
	// retried instead of hanging.
	stall time.Duration

	mu       sync.Mutex
	inflight map[string]*fetchCall
	pins     map[string]int
}

type fetchCall struct {
	done chan struct{}
	err  error
}

func newDropletCache(dir string, blobs BlobFetcher, keep int) *dropletCache {
	return &dropletCache{dir: dir, blobs: blobs, keep: keep, stall: fetchStall, inflight: map[string]*fetchCall{}, pins: map[string]int{}}
}

func (c *dropletCache) path(ref api.BlobRef) string {
	return filepath.Join(c.dir, ref.Digest()+".tar.gz")
}

// acquire returns the path of the cached droplet, fetching it if needed. The
// caller must call release when done reading it.
func (c *dropletCache) acquire(ctx context.Context, ref api.BlobRef) (string, func(), error) {
	if !ref.Valid() {
		return "", nil, api.Errorf(api.EInvalid, "droplet reference %q is not a sha256 blob reference", ref)
	}
	d := ref.Digest()
	for {
		c.mu.Lock()
		if _, err := os.Stat(c.path(ref)); err == nil {
			c.pins[d]++
			c.mu.Unlock()
			now := time.Now()
			_ = os.Chtimes(c.path(ref), now, now) // most recently used
			return c.path(ref), func() { c.unpin(d) }, nil
		}
		call, ok := c.inflight[d]
		if !ok {
			call = &fetchCall{done: make(chan struct{})}
			c.inflight[d] = call
			c.mu.Unlock()
			call.err = c.fetch(ctx, ref)
			c.mu.Lock()
			delete(c.inflight, d)
			c.mu.Unlock()
			close(call.done)
			if call.err != nil {
				return "", nil, call.err
			}
			c.prune()
			continue
		}
		c.mu.Unlock()
		select {
		case <-call.done:
			if call.err != nil {
				return "", nil, call.err
			}
		case <-ctx.Done():
			return "", nil, ctx.Err()
		}
	}
}

func (c *dropletCache) unpin(d string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pins[d]--; c.pins[d] <= 0 {
		delete(c.pins, d)
	}
}

// fetchStall is how long a droplet fetch may receive nothing.
const fetchStall = 30 * time.Second

// fetch downloads ref into the cache, verifying its sha256 while writing.
func (c *dropletCache) fetch(parent context.Context, ref api.BlobRef) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	stalled := time.AfterFunc(c.stall, cancel)
	defer stalled.Stop()
	stallErr := func() error {
		return api.Errorf(api.EUnavailable, "cannot fetch droplet %s: nothing arrived for %s — the start is retried", ref, c.stall)
	}
	rc, err := c.blobs.GetBlob(ctx, ref)
	if err != nil {
		if parent.Err() == nil && ctx.Err() != nil {
			return stallErr()
		}
		return api.Errorf(api.ErrorCode(err), "cannot fetch droplet %s: %s", ref, api.ErrorMessage(err))
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(c.dir, "fetch-*")
	if err != nil {
		return api.Errorf(api.EUnavailable, "cannot store droplet: %v", err)
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(tmp, h), &ctxReader{ctx: ctx, r: rc, progress: func() { stalled.Reset(c.stall) }})
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if parent.Err() != nil {
			return parent.Err()
		}
		if ctx.Err() != nil {
			return stallErr()
		}
		return api.Errorf(api.EUnavailable, "cannot download droplet %s: %v", ref, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != ref.Digest() {
		return api.Errorf(api.EInvalid, "droplet %s is corrupt: its content hashes to sha256:%s", ref, got)
	}
	if err := os.Rename(tmp.Name(), c.path(ref)); err != nil {
		return api.Errorf(api.EUnavailable, "cannot store droplet: %v", err)
	}
	return nil
}

// prune removes all but the keep most recently used droplets not in use.
func (c *dropletCache) prune() {
	c.mu.Lock()
	defer c.mu.Unlock()
	ents, err := os.ReadDir(c.dir)
	if err != nil {
		return
	}
	type item struct {
		digest string
		mtime  time.Time
	}
	var items []item
	for _, e := range ents {
		d, ok := strings.CutSuffix(e.Name(), ".tar.gz")
		if !ok {
			continue
		}
		if info, err := e.Info(); err == nil {
			items = append(items, item{d, info.ModTime()})
		}
	}
	sort.Slice(items, func(i, j int) bool { return items[i].mtime.After(items[j].mtime) })
	for i, it := range items {
		if i < c.keep || c.pins[it.digest] > 0 || c.inflight[it.digest] != nil {
			continue
		}
		_ = os.Remove(filepath.Join(c.dir, it.digest+".tar.gz"))
	}
}

// ctxReader stops a copy when ctx ends.
type ctxReader struct {
	ctx      context.Context
	r        io.Reader
	progress func() // called after a read that returned data (nil: none)
}

func (r *ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := r.r.Read(p)
	if n > 0 && r.progress != nil {
		r.progress()
	}
	return n, err
}
