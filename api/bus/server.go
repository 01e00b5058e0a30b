package bus

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

	// ServerName names this server in its cluster; every server of a
	// cluster needs its own, the same across restarts (JetStream knows its
	// peers by name). Empty: the hostname and a random suffix, kept in
	// StoreDir/server-name so that a restart keeps it.
	ServerName string
	// Cluster is the host:port this server listens on for the routes of
	// the other servers of its NATS cluster (port 0 picks a free port).
	// Empty: no cluster, the server stands alone.
	Cluster string
	// Routes are the nats-route://host:port URLs of the other servers of
	// the cluster (listing this server too is harmless). Credentials
	// derived from ClusterSecret are added to them.
	Routes []string
	// ClusterSecret is shared by every server of the cluster: a route is
	// accepted only from a server that knows it. Required with Cluster.
	ClusterSecret string
	// Replicas is how many servers keep each message of a work queue made
	// through an in-process connection to this server. 0: 3 when the
	// cluster has at least three servers (this one and its routes), else 1.
	Replicas int
	// ClusterWait bounds how long StartServer waits for the cluster's
	// JetStream meta leader (default 60s).
	ClusterWait time.Duration
}

// ClusterName is the name every server of a Strata NATS cluster carries.
const ClusterName = "strata"

// routeUser is the user a server presents on the routes of its cluster.
const routeUser = "strata-route"

// Server is an embedded nats-server.
type Server struct {
	ns       *server.Server
	replicas int
}

// StartServer starts an embedded nats-server and waits until it accepts
// connections and, when clustered with JetStream, until the cluster has a
// JetStream meta leader (streams cannot be made before).
func StartServer(cfg ServerConfig) (*Server, error) {
	name := cfg.ServerName
	if name == "" {
		var err error
		if name, err = defaultServerName(cfg.StoreDir); err != nil {
			return nil, err
		}
	}
	opts := &server.Options{
		ServerName:             name,
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
	servers := 1
	if cfg.Cluster != "" {
		var err error
		if servers, err = clusterOptions(opts, cfg); err != nil {
			return nil, err
		}
	}
	replicas := cfg.Replicas
	if replicas <= 0 {
		replicas = 1
		if servers >= 3 {
			replicas = 3
		}
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
	if cfg.Cluster != "" && opts.JetStream {
		wait := cfg.ClusterWait
		if wait <= 0 {
			wait = 60 * time.Second
		}
		deadline := time.Now().Add(wait)
		for !(ns.JetStreamIsLeader() || ns.JetStreamIsCurrent()) {
			if time.Now().After(deadline) {
				ns.Shutdown()
				return nil, fmt.Errorf("nats server %s: no JetStream meta leader in the cluster after %s — are a majority of the servers of the routes (%s) up, with the same cluster secret?", name, wait, strings.Join(cfg.Routes, ","))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return &Server{ns: ns, replicas: replicas}, nil
}

// clusterOptions sets the cluster listener and the authenticated routes,
// and returns how many servers the cluster has as this one sees it.
func clusterOptions(opts *server.Options, cfg ServerConfig) (int, error) {
	if cfg.Port < 0 {
		return 0, fmt.Errorf("nats cluster: a clustered server must listen for clients — give it a client address")
	}
	if cfg.ClusterSecret == "" {
		return 0, fmt.Errorf("nats cluster: a cluster secret is required — every server of the cluster must be given the same one")
	}
	host, port, err := net.SplitHostPort(cfg.Cluster)
	if err != nil {
		return 0, fmt.Errorf("bad nats cluster address %q: %v — use host:port", cfg.Cluster, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 {
		return 0, fmt.Errorf("bad nats cluster port %q — use host:port", port)
	}
	if p == 0 {
		p = server.RANDOM_PORT
	}
	pass := routePassword(cfg.ClusterSecret)
	opts.Cluster = server.ClusterOpts{Name: ClusterName, Host: host, Port: p, Username: routeUser, Password: pass}
	seen := map[string]bool{}
	self := false
	for _, r := range cfg.Routes {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		u, err := url.Parse(r)
		if err != nil || u.Host == "" || (u.Scheme != "nats-route" && u.Scheme != "nats") {
			return 0, fmt.Errorf("bad nats route %q — use nats-route://host:port", r)
		}
		u.User = url.UserPassword(routeUser, pass)
		if seen[u.Host] {
			continue
		}
		seen[u.Host] = true
		if u.Host == cfg.Cluster {
			self = true
		}
		opts.Routes = append(opts.Routes, u)
	}
	servers := len(opts.Routes) + 1
	if self {
		servers--
	}
	return servers, nil
}

// routePassword derives the route password from the cluster secret, so the
// secret itself never travels.
func routePassword(secret string) string {
	sum := sha256.Sum256([]byte("strata nats route\x00" + secret))
	return hex.EncodeToString(sum[:])
}

// defaultServerName returns the name kept in dir, or makes one (the
// hostname and a random suffix) and keeps it there.
func defaultServerName(dir string) (string, error) {
	file := filepath.Join(dir, "server-name")
	if dir != "" {
		if b, err := os.ReadFile(file); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			return strings.TrimSpace(string(b)), nil
		}
	}
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "strata"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := strings.NewReplacer(" ", "-", ".", "-").Replace(h) + "-" + hex.EncodeToString(b)
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", err
		}
		if err := os.WriteFile(file, []byte(name+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("nats server: keep its name: %w", err)
		}
	}
	return name, nil
}

// ClientURL returns the nats:// URL clients connect to ("" when not listening).
func (s *Server) ClientURL() string {
	if s.ns.Addr() == nil {
		return ""
	}
	return s.ns.ClientURL()
}

// ClusterAddr returns the host:port this server accepts routes on ("" when
// not clustered).
func (s *Server) ClusterAddr() string {
	if a := s.ns.ClusterAddr(); a != nil {
		return a.String()
	}
	return ""
}

// Name is the server's name in its cluster.
func (s *Server) Name() string { return s.ns.Name() }

// Replicas is how many servers keep each message of a work queue made
// through an in-process connection (ServerConfig.Replicas).
func (s *Server) Replicas() int { return s.replicas }

// IsStreamLeader reports whether this server leads the JetStream stream
// (of the components' account) in its cluster.
func (s *Server) IsStreamLeader(stream string) bool {
	return s.ns.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream)
}

// Shutdown stops the server and waits for it to finish.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}
