package router

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/router/registry"
)

// Lookup finds the pool of endpoints serving a host and path: nil for an
// unknown host (404), a pool without endpoints for a known host whose
// instances are all gone (held, then 503). Lookup is called on every request
// and must be cheap and safe for concurrent use. Watch is called only for
// held requests; see registry.Registry.Watch.
type Lookup interface {
	Lookup(host, path string) *registry.Pool
	Watch(host string) (changed <-chan struct{}, release func())
}

var _ Lookup = (*registry.Registry)(nil)

// Proxy is the router's http.Handler. Safe for concurrent use.
type Proxy struct {
	cfg       Config
	lookup    Lookup
	log       *slog.Logger
	transport backendTransport
	rp        *httputil.ReverseProxy
	buffers   *bufferPool
	states    sync.Pool // *reqState
	holds     holds     // requests waiting for an endpoint, per route
}

var _ http.Handler = (*Proxy)(nil)

// backendTransport is how the Proxy reaches backends.
type backendTransport interface {
	RoundTrip(*http.Request) (*http.Response, error)
	// send sends the request head to addr for the bodiless request req
	// (see serveLean) and reads the response.
	send(req *http.Request, addr string, head []byte) (*http.Response, error)
	CloseIdleConnections()
}

// reqState is the per-request state, pooled.
type reqState struct {
	rw    responseWriter
	pool  *registry.Pool
	ep    *registry.Endpoint // the endpoint tried last
	body  *trackedBody       // the request body, if any
	held  *registry.Endpoint // the endpoint Acquired for this request (least-conn routes)
	reqID string

	holdUntil time.Time // when the request's holding must end; zero until it is first held
	replayed  bool      // sent again after the backend closed its connection unanswered

	head []byte // the outbound request head on the lean path, kept across requests
}

type stateKey struct{}

func stateOf(ctx context.Context) *reqState {
	st, _ := ctx.Value(stateKey{}).(*reqState)
	return st
}

// New returns a Proxy that routes with lookup. Zero Config fields take the
// defaults of DefaultConfig.
func New(cfg Config, lookup Lookup, logger *slog.Logger) *Proxy {
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.Default()
	}
	p := &Proxy{cfg: cfg, lookup: lookup, log: logger}
	p.states.New = func() any { return new(reqState) }
	dial := (&net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}).DialContext
	fallback := &http.Transport{
		Proxy:                 nil,
		DialContext:           dial,
		MaxIdleConns:          cfg.MaxIdleConns,
		MaxIdleConnsPerHost:   cfg.MaxIdleConnsPerHost,
		IdleConnTimeout:       cfg.BackendIdleTimeout,
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
		WriteBufferSize:       16 << 10,
		ReadBufferSize:        16 << 10,
	}
	p.transport = &h1Transport{
		dial:            dial,
		fallback:        fallback,
		responseTimeout: cfg.ResponseHeaderTimeout,
		idleTimeout:     cfg.BackendIdleTimeout,
		maxIdlePerHost:  cfg.MaxIdleConnsPerHost,
		now:             cfg.Now,
		idle:            map[string][]*backendConn{},
	}
	p.buffers = newBufferPool()
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      retryTransport{p},
		BufferPool:     p.buffers,
		ModifyResponse: modifyResponse,
		ErrorHandler:   p.proxyError,
		ErrorLog:       slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	return p
}

// Close closes idle backend connections.
func (p *Proxy) Close() { p.transport.CloseIdleConnections() }

// ServeHTTP routes r by its Host header.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := p.cfg.Now()
	st := p.states.Get().(*reqState)
	st.rw.reset(w)
	st.reqID = requestID(r)

	pool := p.lookup.Lookup(r.Host, r.URL.Path)
	if pool != nil {
		pool.Touch(start)
	}
	// Deferred so that a request aborted mid-body (ReverseProxy panics with
	// http.ErrAbortHandler) is still logged.
	defer p.finish(st, r, pool, start)
	switch {
	case pool == nil:
		writeError(&st.rw, r, http.StatusNotFound, st.reqID, p.notFoundMessage(r.Host))
	case pool.Len() == 0 && p.holdable(r):
		ready, recheck := hasEndpoint, time.Duration(0)
		if pool.Sleeping() {
			ready, recheck = p.woken, time.Second
		}
		np, status, msg := p.hold(st, r, pool, ready, recheck)
		switch {
		case np != nil:
			pool = np
			p.forward(st, r, np)
		case status == 499:
			st.rw.status = 499
		default:
			writeError(&st.rw, r, status, st.reqID, msg)
		}
	case pool.Len() == 0:
		writeError(&st.rw, r, http.StatusServiceUnavailable, st.reqID,
			"no instance of "+appLabel(pool)+" is running for host "+hostLabel(r.Host)+
				" — check it with `strata app "+appOr(pool, "NAME")+"` or start it with `strata start "+appOr(pool, "NAME")+"`")
	default:
		p.forward(st, r, pool)
	}
}

// forward sends r to one of pool's endpoints: bodiless requests by the lean
// path, the rest through the reverse proxy.
func (p *Proxy) forward(st *reqState, r *http.Request, pool *registry.Pool) {
	st.pool = pool
	if leanEligible(r) {
		p.serveLean(st, r)
		return
	}
	p.rp.ServeHTTP(&st.rw, r.WithContext(context.WithValue(r.Context(), stateKey{}, st)))
}

func (p *Proxy) finish(st *reqState, r *http.Request, pool *registry.Pool, start time.Time) {
	if st.held != nil {
		st.held.Release()
	}
	if p.cfg.AccessLog != nil && pool != nil && pool.AppName() != "" {
		p.accessLog(st, r, pool, start)
	}
	if p.cfg.Metrics != nil {
		app := ""
		if pool != nil {
			app = pool.AppName()
		}
		p.cfg.Metrics.observe(app, st.rw.statusCode(), p.cfg.Now().Sub(start))
	}
	head := st.head[:0]
	*st = reqState{head: head}
	p.states.Put(st)
}

func (p *Proxy) notFoundMessage(host string) string {
	msg := "no app is mapped to host " + hostLabel(host) + " — push one with `strata push`"
	if h := registry.NormalizeHost(host); h != p.cfg.Domain && !strings.HasSuffix(h, "."+p.cfg.Domain) {
		msg += " (apps are served at <app>." + p.cfg.Domain + ")"
	}
	return msg
}

func appLabel(pool *registry.Pool) string {
	if n := pool.AppName(); n != "" {
		return "app " + n
	}
	return "the app"
}

func appOr(pool *registry.Pool, def string) string {
	if n := pool.AppName(); n != "" {
		return n
	}
	return def
}

func hostLabel(host string) string {
	host = registry.NormalizeHost(host)
	if len(host) > 253 {
		host = host[:253] + "…"
	}
	return host
}

// rewrite prepares the outbound request; the endpoint is chosen (and
// re-chosen on connect failures) by retryTransport.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	st := stateOf(pr.In.Context())
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = st.pool.Host() // replaced by the endpoint address
	pr.Out.Host = pr.In.Host
	if xff, ok := pr.In.Header["X-Forwarded-For"]; ok {
		pr.Out.Header["X-Forwarded-For"] = xff
	}
	pr.SetXForwarded()
	pr.Out.Header.Set("X-Request-Id", st.reqID)
}

func modifyResponse(resp *http.Response) error {
	if st := stateOf(resp.Request.Context()); st != nil {
		resp.Header.Set("X-Request-Id", st.reqID)
		if resp.StatusCode == http.StatusSwitchingProtocols {
			// ReverseProxy writes a 101 on the hijacked connection, past
			// the responseWriter: record it for the access log.
			st.rw.status, st.rw.wroteHeader = resp.StatusCode, true
		}
	}
	return nil
}

// proxyError answers when no endpoint could be used.
func (p *Proxy) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	p.writeProxyError(stateOf(r.Context()), w, r, err)
}

func (p *Proxy) writeProxyError(st *reqState, w http.ResponseWriter, r *http.Request, err error) {
	app := appLabel(st.pool)
	var upstream string
	if st.ep != nil {
		upstream = st.ep.PrivateInstanceID
	}
	var ne net.Error
	var he *holdError
	switch {
	case st.body != nil && st.body.failed.Load():
		// The client's body was malformed (bad chunking) or cut short: the
		// backend's connection was dropped mid-request; the client's cannot
		// be reused either.
		w.Header().Set("Connection", "close")
		writeError(w, r, http.StatusBadRequest, st.reqID, "the request body could not be read: "+bodyErrorText(st.body)+" — send a well-formed body")
	case r.Context().Err() != nil:
		// The client went away; there is nobody to answer.
		st.rw.status = 499
		return
	case errors.As(err, &he):
		writeError(w, r, he.status, st.reqID, he.msg)
	case isDialError(err):
		p.log.Warn("proxy.unreachable", "host", r.Host, "upstream", upstream, "err", err)
		writeError(w, r, http.StatusBadGateway, st.reqID,
			"no instance of "+app+" accepted a connection — its instances may be restarting; see `strata logs "+appOr(st.pool, "NAME")+"`")
	case errors.As(err, &ne) && ne.Timeout():
		p.log.Warn("proxy.timeout", "host", r.Host, "upstream", upstream, "err", err)
		writeError(w, r, http.StatusGatewayTimeout, st.reqID,
			app+" did not answer within "+p.cfg.ResponseHeaderTimeout.String())
	default:
		p.log.Warn("proxy.error", "host", r.Host, "upstream", upstream, "err", err)
		writeError(w, r, http.StatusBadGateway, st.reqID, app+" sent an invalid response or closed the connection")
	}
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// writeError writes a plain-text error page that names the request id.
func writeError(w http.ResponseWriter, r *http.Request, status int, reqID, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Request-Id", reqID)
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, strconv.Itoa(status)+" "+http.StatusText(status)+"\n\n"+msg+"\n\nrequest id: "+reqID+"\n")
	}
}

// requestID returns the request's X-Request-Id when it is well formed, else a
// new random one.
func requestID(r *http.Request) string {
	if v := r.Header["X-Request-Id"]; len(v) == 1 && validRequestID(v[0]) {
		return v[0]
	}
	return rand.Text()
}

func validRequestID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// accessLog sends one line: GET /path 200 123B 1.2ms upstream=<id> request_id=<id>.
func (p *Proxy) accessLog(st *reqState, r *http.Request, pool *registry.Pool, start time.Time) {
	path := r.URL.EscapedPath()
	if len(path) > 1024 {
		path = path[:1024] + "..."
	}
	var buf [256]byte // the line is built on the stack unless the path is long
	b := append(buf[:0], r.Method...)
	b = append(b, ' ')
	b = append(b, path...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(st.rw.statusCode()), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, st.rw.bytes, 10)
	b = append(b, "B "...)
	ms := float64(p.cfg.Now().Sub(start)) / float64(time.Millisecond)
	b = strconv.AppendFloat(b, ms, 'f', 1, 64)
	b = append(b, "ms upstream="...)
	if st.ep != nil {
		b = append(b, st.ep.PrivateInstanceID...)
	} else {
		b = append(b, '-')
	}
	b = append(b, " request_id="...)
	b = append(b, st.reqID...)
	p.cfg.AccessLog(api.LogEnvelope{Time: start, AppID: pool.AppID(), App: pool.AppName(), Source: api.LogSourceRouter, Line: string(b), LatencyMs: ms})
}

// retryTransport sends the request to the pool's endpoints in round-robin
// order (starting at the least loaded one on least-connections routes), moving to the next one when connecting fails (no request byte was
// sent), at most MaxTries times. Endpoints that recently refused a
// connection are tried last. When every try was refused and the request may
// be held, it is held (see holdAfterRefused) and sent again; a request that
// may be held and whose connection the backend closed unanswered
// (unansweredError) is sent once more.
type retryTransport struct{ p *Proxy }

func (t retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.p.roundTrip(stateOf(req.Context()), req, nil)
}

// roundTrip sends req to st.pool's endpoints as retryTransport describes:
// as an http.Request, or as the given request head on the lean path.
func (p *Proxy) roundTrip(st *reqState, req *http.Request, head []byte) (*http.Response, error) {
	var body *trackedBody
	if req.Body != nil && req.Body != http.NoBody {
		body = &trackedBody{rc: req.Body}
		req.Body = body
		st.body = body
	}
	for {
		resp, err := p.tryPool(st, req, head, body)
		if err == nil || (body != nil && body.read.Load()) || req.Context().Err() != nil || !p.holdable(req) {
			return resp, err
		}
		var ue *unansweredError
		switch {
		case errors.As(err, &ue) && !st.replayed:
			// Sent once more, and only once: a request that kills its
			// instance must not kill every instance that replaces it.
			st.replayed = true
		case !isDialError(err):
			return nil, err
		default:
			if err := p.holdAfterRefused(st, req); err != nil {
				return nil, err
			}
		}
	}
}

// tryPool is one round of roundTrip over st.pool's endpoints.
func (p *Proxy) tryPool(st *reqState, req *http.Request, head []byte, body *trackedBody) (*http.Response, error) {
	pool := st.pool
	n := pool.Len()
	tries := min(n, p.cfg.MaxTries)
	first := pool.Next()
	now := p.cfg.Now()
	leastConn := pool.LeastConn()
	if leastConn {
		first = pool.LeastLoaded(first, now)
	}
	var lastErr error
	attempt := 0
	for pass := 0; pass < 2; pass++ { // pass 0: healthy endpoints; pass 1: recently failed ones
		for j := 0; j < n && attempt < tries; j++ {
			ep := pool.At(first + j)
			if ep.Failed(now) != (pass == 1) {
				continue
			}
			attempt++
			st.ep = ep
			if leastConn {
				ep.Acquire()
			}
			var resp *http.Response
			var err error
			if head != nil {
				resp, err = p.transport.send(req, ep.Addr, head)
			} else {
				out := req
				if attempt > 1 || !st.holdUntil.IsZero() { // a retry (or one after a hold) sends a copy
					c, u := *req, *req.URL
					c.URL = &u
					out = &c
				}
				out.URL.Host = ep.Addr
				resp, err = p.transport.RoundTrip(out)
			}
			if err == nil {
				if leastConn {
					st.held = ep // released when the response is done
				}
				return resp, nil
			}
			if leastConn {
				ep.Release()
			}
			lastErr = err
			if !isDialError(err) || (body != nil && body.read.Load()) || req.Context().Err() != nil {
				return nil, err
			}
			ep.MarkFailed(now.Add(p.cfg.FailedEndpointTTL))
			p.log.Warn("proxy.connect_failed", "addr", ep.Addr, "instance", ep.PrivateInstanceID, "attempt", attempt, "err", err)
		}
	}
	return nil, lastErr
}

// trackedBody lets a request be retried: it records whether any byte was read
// and ignores Close from the transport (the server closes the real body).
type trackedBody struct {
	rc     io.ReadCloser
	read   atomic.Bool
	failed atomic.Bool           // a Read returned an error other than io.EOF
	err    atomic.Pointer[error] // that error
}

func (b *trackedBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF {
		b.err.Store(&err)
		b.failed.Store(true)
	}
	return n, err
}

func bodyErrorText(b *trackedBody) string {
	if e := b.err.Load(); e != nil {
		return (*e).Error()
	}
	return "read failed"
}

func (b *trackedBody) Close() error { return nil }

// responseWriter records status and body size for the access log.
type responseWriter struct {
	w           http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (rw *responseWriter) reset(w http.ResponseWriter) { *rw = responseWriter{w: w} }

func (rw *responseWriter) Header() http.Header { return rw.w.Header() }

func (rw *responseWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		rw.w.WriteHeader(code) // informational, not the final status
		return
	}
	if !rw.wroteHeader {
		rw.wroteHeader, rw.status = true, code
	}
	rw.w.WriteHeader(code)
}

func (rw *responseWriter) Write(b []byte) (int, error) {
	if !rw.wroteHeader {
		rw.wroteHeader, rw.status = true, http.StatusOK
	}
	n, err := rw.w.Write(b)
	rw.bytes += int64(n)
	return n, err
}

func (rw *responseWriter) Flush() {
	if f, ok := rw.w.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach Hijack (WebSocket upgrades) and
// deadlines on the underlying writer.
func (rw *responseWriter) Unwrap() http.ResponseWriter { return rw.w }

func (rw *responseWriter) statusCode() int {
	if rw.status == 0 {
		return http.StatusOK
	}
	return rw.status
}

// bufferPool reuses 32 KiB copy buffers without allocating on Put.
type bufferPool struct{ p sync.Pool }

const bufSize = 32 << 10

func newBufferPool() *bufferPool {
	bp := &bufferPool{}
	bp.p.New = func() any { return new([bufSize]byte) }
	return bp
}

func (bp *bufferPool) Get() []byte { return bp.p.Get().(*[bufSize]byte)[:] }

func (bp *bufferPool) Put(b []byte) {
	if cap(b) == bufSize {
		bp.p.Put((*[bufSize]byte)(b[:bufSize]))
	}
}
