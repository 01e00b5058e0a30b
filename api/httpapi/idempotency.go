package httpapi

import (
	"bytes"
	"container/list"
	"crypto/sha256"
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
		id := user + "\x00" + req.Method + "\x00" + req.URL.Path + "\x00" + key

		entry, fresh := s.idem.begin(id)
		if !fresh {
			if entry.pending {
				return api.Errorf(api.EConflict, "a request with this Idempotency-Key is still running — retry later")
			}
			// Drain the body to compare its digest with the stored one.
			_, _ = io.Copy(io.Discard, req.Body)
			if !bytes.Equal(h.Sum(nil), entry.digest) {
				return api.Errorf(api.EInvalid, "this Idempotency-Key was used for a different request — use a new key")
			}
			for k, v := range entry.header {
				c.Response().Header()[k] = v
			}
			c.Response().Header().Set("Idempotent-Replayed", "true")
			return c.Blob(entry.status, entry.header.Get(echo.HeaderContentType), entry.body)
		}

		rec := &recorder{ResponseWriter: c.Response().Writer}
		c.Response().Writer = rec
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		c.Response().Writer = rec.ResponseWriter
		_, _ = io.Copy(io.Discard, req.Body)
		status := c.Response().Status
		if status >= 500 || status == 0 {
			s.idem.abort(id)
		} else {
			hdr := http.Header{}
			if ct := c.Response().Header().Get(echo.HeaderContentType); ct != "" {
				hdr.Set(echo.HeaderContentType, ct)
			}
			s.idem.finish(id, &idemEntry{status: status, header: hdr, body: rec.body.Bytes(), digest: h.Sum(nil)})
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
	pending bool
	status  int
	header  http.Header
	body    []byte
	digest  []byte
	expires time.Time
	elem    *list.Element
}

// idempotencyCache is an LRU of completed responses with a TTL.
type idempotencyCache struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	now   func() time.Time
	items map[string]*idemEntry
	order *list.List // front = most recently used; values are keys
}

func newIdempotencyCache(max int, ttl time.Duration, now func() time.Time) *idempotencyCache {
	return &idempotencyCache{max: max, ttl: ttl, now: now, items: map[string]*idemEntry{}, order: list.New()}
}

// begin returns the entry for id and false if one exists, or reserves id as
// pending and returns true.
func (c *idempotencyCache) begin(id string) (idemEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[id]; ok {
		if e.pending || c.now().Before(e.expires) {
			c.order.MoveToFront(e.elem)
			return *e, false
		}
		c.remove(id)
	}
	e := &idemEntry{pending: true}
	e.elem = c.order.PushFront(id)
	c.items[id] = e
	for c.order.Len() > c.max {
		c.remove(c.order.Back().Value.(string))
	}
	return idemEntry{}, true
}

func (c *idempotencyCache) finish(id string, done *idemEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[id]
	if !ok {
		return
	}
	done.expires = c.now().Add(c.ttl)
	done.elem = e.elem
	c.items[id] = done
}

func (c *idempotencyCache) abort(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.remove(id)
}

func (c *idempotencyCache) remove(id string) {
	if e, ok := c.items[id]; ok {
		c.order.Remove(e.elem)
		delete(c.items, id)
	}
}
