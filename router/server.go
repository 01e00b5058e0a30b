package router

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Server serves an http.Handler (normally a *Proxy) with the Config's
// ReadHeaderTimeout, IdleTimeout and MaxHeaderBytes.
type Server struct {
	cfg     Config
	handler http.Handler
	log     *slog.Logger
}

// NewServer returns a Server for handler. Zero Config fields take the
// defaults of DefaultConfig.
func NewServer(cfg Config, handler http.Handler, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.Default()
	}
	return &Server{cfg: cfg.withDefaults(), handler: handler, log: logger}
}

// Serve accepts connections on ln until ctx ends, then drains: it stops
// accepting at once, lets in-flight requests finish for up to ShutdownGrace,
// then cancels the ones left (their contexts end, so upgraded connections
// such as WebSockets are closed too) and closes every connection. It returns
// nil after a shutdown caused by ctx, or the error that stopped serving. ln
// is closed on return.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return s.serve(ctx, ln, nil)
}

// ServeTLS is Serve with TLS termination on ln (HTTP/2 and HTTP/1.1, as
// tlsConfig offers; see CertStore.TLSConfig). The raw-framing guard works on
// plaintext only: over TLS, HTTP/1.1 requests with both Content-Length and
// Transfer-Encoding are read as chunked with the Content-Length dropped (RFC
// 9112 §6.3) rather than refused, and obs-fold is unfolded.
func (s *Server) ServeTLS(ctx context.Context, ln net.Listener, tlsConfig *tls.Config) error {
	return s.serve(ctx, ln, tlsConfig)
}

func (s *Server) serve(ctx context.Context, ln net.Listener, tlsConfig *tls.Config) error {
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	var inflight atomic.Int64
	handler := guardHandler{http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inflight.Add(1)
		defer inflight.Add(-1)
		s.handler.ServeHTTP(w, r)
	})}
	hs := &http.Server{
		Handler:           handler,
		ConnContext:       guardConnContext,
		BaseContext:       func(net.Listener) context.Context { return base },
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 2)
	var loop *h1Loop
	if tlsConfig != nil {
		hs.TLSConfig = tlsConfig.Clone()
		go func() { errc <- hs.ServeTLS(ln, "", "") }()
	} else {
		// Plaintext connections start on the router's own HTTP/1.1 loop,
		// which hands to hs what it does not serve itself (h1serve.go).
		loop = &h1Loop{s: s, handler: handler, handoff: newHandoffListener(ln.Addr()), conns: map[*h1Conn]struct{}{}}
		go func() { errc <- hs.Serve(loop.handoff) }()
		go func() { errc <- loop.accept(base, ln) }()
		defer loop.wg.Wait()
		defer ln.Close()
	}
	s.log.Info("router.serving", "addr", ln.Addr().String(), "domain", s.cfg.Domain, "tls", tlsConfig != nil)
	select {
	case err := <-errc:
		if loop != nil {
			loop.shutdown()
			ln.Close()
			loop.closeAll()
			_ = hs.Close()
		}
		return err
	case <-ctx.Done():
	}
	s.log.Info("router.draining", "grace", s.cfg.ShutdownGrace)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownGrace)
	defer cancel()
	if loop != nil {
		loop.shutdown()
		ln.Close()
	}
	if err := hs.Shutdown(sctx); err != nil {
		s.log.Warn("router.shutdown_forced", "err", err)
		cancelBase()
		_ = hs.Close()
	}
	if loop != nil && !loop.wait(sctx) {
		s.log.Warn("router.shutdown_forced", "err", "serving loop connections left")
		cancelBase()
		loop.closeAll()
	}
	// Hijacked connections (upgrades) are not tracked by Shutdown: wait for
	// their handlers until the grace ends, then cancel them and wait a little
	// more for them to notice.
	if !waitZero(sctx, &inflight) {
		cancelBase()
		hctx, hcancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer hcancel()
		if !waitZero(hctx, &inflight) {
			s.log.Warn("router.shutdown_handlers_left", "handlers", inflight.Load())
		}
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		return err
	}
	if loop != nil {
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			return err
		}
	}
	s.log.Info("router.drained")
	return nil
}

// waitZero polls n until it is zero (true) or ctx ends (false).
func waitZero(ctx context.Context, n *atomic.Int64) bool {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for n.Load() != 0 {
		select {
		case <-ctx.Done():
			return n.Load() == 0
		case <-t.C:
		}
	}
	return true
}
