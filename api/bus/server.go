package bus

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ServerConfig configures an embedded nats-server.
type ServerConfig struct {
	// Host and Port to listen on for clients. Port 0 picks a free port;
	// Port -1 does not listen at all (in-process clients only).
	Host string
	Port int
	// StoreDir holds JetStream data. Empty disables JetStream.
	StoreDir string
	Logger   *slog.Logger
	// Auth, when set, decides who may connect and what each client may
	// publish and subscribe to (ComponentAuth); without it anyone who
	// reaches the server may do anything.
	Auth Authenticator
}

// Server is an embedded nats-server.
type Server struct {
	ns *server.Server
}

// StartServer starts an embedded nats-server and waits until it accepts
// connections.
func StartServer(cfg ServerConfig) (*Server, error) {
	opts := &server.Options{
		ServerName:             "strata",
		Host:                   cfg.Host,
		Port:                   cfg.Port,
		NoSigs:                 true,
		NoLog:                  true,
		MaxPayload:             8 << 20,
		DisableJetStreamBanner: true,
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if cfg.Port < 0 {
		opts.DontListen = true
		opts.Port = 0
	} else if cfg.Port == 0 {
		opts.Port = server.RANDOM_PORT
	}
	if cfg.Auth != nil {
		opts.CustomClientAuthentication = authAdapter{fn: cfg.Auth}
	}
	if cfg.StoreDir != "" {
		opts.JetStream = true
		opts.StoreDir = cfg.StoreDir
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("nats server: not ready after 10s")
	}
	return &Server{ns: ns}, nil
}

// ClientURL returns the nats:// URL clients connect to ("" when not listening).
func (s *Server) ClientURL() string {
	if s.ns.Addr() == nil {
		return ""
	}
	return s.ns.ClientURL()
}

// Shutdown stops the server and waits for it to finish.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}
