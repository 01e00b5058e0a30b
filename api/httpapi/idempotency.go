package httpapi

import (
	"bytes"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/strata-paas/strata/api"
)

// MaxIdempotencyKey is the longest accepted Idempotency-Key.
const MaxIdempotencyKey = 255

// idempotent replays the stored response of a request with the same
// Idempotency-Key from the same principal (see doc.go).
func (s *Server) idempotent(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		key := c.Request().Header.Get("Idempotency-Key")
		if key == "" {
			return next(c)
		}
		if len(key) > MaxIdempotencyKey {
			return api.Errorf(api.EInvalid, "Idempotency-Key is longer than %d characters — use a UUID", MaxIdempotencyKey)
		}
		req := c.Request()
		p := api.PrincipalFrom(req.Context())
		user := ""
		if p != nil {
			user = p.UserID
		}
		// Hash the body so a reused key with a different request is refused.
		// Blob bodies can be large: those are hashed while streaming.
		h := sha256.New()
		req.Body = struct {
			io.Reader
			io.Closer
		}{io.TeeReader(req.Body, h), req.Body}
		sum := sha256.Sum256([]byte(user + "\x00" + req.Method + "\x00" + req.URL.Path + "\x00" + key))
		id := hex.EncodeToString(sum[:])
		ctx := req.Context()
		now := time.Now()

		entry, fresh, err := s.idem.BeginIdempotent(ctx, id, now, now.Add(s.cfg.IdempotencyPending))
		if err != nil {
			return err
		}
		if !fresh {
			if entry.Pending {
				return api.Errorf(api.EConflict, "a request with this Idempotency-Key is still running — retry later")
			}
			// Drain the body to compare its digest with the stored one.
			_, _ = io.Copy(io.Discard, req.Body)
			if !bytes.Equal(h.Sum(nil), entry.Digest) {
				return api.Errorf(api.EInvalid, "this Idempotency-Key was used for a different request — use a new key")
			}
			c.Response().Header().Set("Idempotent-Replayed", "true")
			return c.Blob(entry.Status, entry.ContentType, entry.Body)
		}

		rec := &recorder{ResponseWriter: c.Response().Writer}
		c.Response().Writer = rec
		err = next(c)
		if err != nil {
			c.Error(err)
		}
		c.Response().Writer = rec.ResponseWriter
		_, _ = io.Copy(io.Discard, req.Body)
		status := c.Response().Status
		// The outcome is kept even when the client has gone: a retry must
		// see it, not run the request again.
		octx := context.WithoutCancel(ctx)
		if status >= 500 || status == 0 {
			if err := s.idem.AbortIdempotent(octx, id); err != nil {
				s.log.Warn("idempotency.abort_failed", "err", err)
			}
		} else {
			done := &api.IdempotentResponse{Status: status, ContentType: c.Response().Header().Get(echo.HeaderContentType), Body: rec.body.Bytes(), Digest: h.Sum(nil)}
			if err := s.idem.FinishIdempotent(octx, id, done, time.Now().Add(s.cfg.IdempotencyTTL)); err != nil {
				s.log.Warn("idempotency.store_failed", "err", err)
			}
		}
		return nil
	}
}

// recorder copies a (small) response body while writing it through.
type recorder struct {
	http.ResponseWriter
	body bytes.Buffer
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.body.Len() < 1<<20 {
		r.body.Write(b)
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

type idemEntry struct {
	resp    api.IdempotentResponse
	expires time.Time
	elem    *list.Element
}

// idempotencyCache is an in-memory api.IdempotencyStore: an LRU of at most
// max entries, for a server that has no shared one.
type idempotencyCache struct {
	mu    sync.Mutex
	max   int
	items map[string]*idemEntry
	order *list.List // front = most recently used; values are keys
}

func newIdempotencyCache(max int) *idempotencyCache {
	return &idempotencyCache{max: max, items: map[string]*idemEntry{}, order: list.New()}
}

// BeginIdempotent returns the unexpired entry for id and false, or reserves
// id as pending until pendingUntil and returns true.
func (c *idempotencyCache) BeginIdempotent(_ context.Context, id string, now, pendingUntil time.Time) (*api.IdempotentResponse, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[id]; ok {
		if now.Before(e.expires) {
			c.order.MoveToFront(e.elem)
			r := e.resp
			return &r, false, nil
		}
		c.remove(id)
	}
	e := &idemEntry{resp: api.IdempotentResponse{Pending: true}, expires: pendingUntil}
	e.elem = c.order.PushFront(id)
	c.items[id] = e
	for c.order.Len() > c.max {
		c.remove(c.order.Back().Value.(string))
	}
	return nil, true, nil
}

func (c *idempotencyCache) FinishIdempotent(_ context.Context, id string, r *api.IdempotentResponse, expires time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[id]; ok && e.resp.Pending {
		e.resp, e.expires = *r, expires
		e.resp.Pending = false
	}
	return nil
}

func (c *idempotencyCache) AbortIdempotent(_ context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[id]; ok && e.resp.Pending {
		c.remove(id)
	}
	return nil
}

func (c *idempotencyCache) remove(id string) {
	if e, ok := c.items[id]; ok {
		c.order.Remove(e.elem)
		delete(c.items, id)
	}
}
