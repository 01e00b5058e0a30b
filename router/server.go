package router

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
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

// Serve accepts connections on ln until ctx ends, then stops accepting and
// waits up to ShutdownGrace for in-flight requests before closing the rest.
// It returns nil after a shutdown caused by ctx, or the error that stopped
// serving. ln is closed on return.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           guardHandler{s.handler},
		ConnContext:       guardConnContext,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(guardListener{ln}) }()
	s.log.Info("router.serving", "addr", ln.Addr().String(), "domain", s.cfg.Domain)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownGrace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		s.log.Warn("router.shutdown_forced", "err", err)
		_ = hs.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
