package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/blobstore"
	"github.com/strata-paas/strata/api/bus"
	"github.com/strata-paas/strata/api/client"
	"github.com/strata-paas/strata/api/controller"
	"github.com/strata-paas/strata/api/gitpush"
	"github.com/strata-paas/strata/api/httpapi"
	"github.com/strata-paas/strata/api/secretbox"
	"github.com/strata-paas/strata/api/store"
	"github.com/strata-paas/strata/stager"
	"github.com/strata-paas/strata/web"
)

// controllerConfig is the wiring of the controller role (also used by the
// microcloud).
type controllerConfig struct {
	DataDir    string
	APIAddr    string
	Database   string // "" = SQLite in DataDir; postgres://… = PostgreSQL
	Domain     string
	RouterPort string // port in app URLs ("80" or "" hides it)
	Builder    bool   // run a build worker in this process
	// CredentialsDir holds admin.token and the component credentials
	// (<component>.token); "" = DataDir. Controllers sharing one database
	// share it (docs/architecture.md, "Leader lease").
	CredentialsDir string
	// SecretKeyFile holds the key sealing secrets at rest (uploaded private
	// keys); created 0600 when missing. "" = <CredentialsDir>/secret.key.
	SecretKeyFile string
	// ControllerID and LeaseTTL name this controller's leader lease and its
	// time to live (docs/architecture.md, "Leader lease"); zero = defaults.
	ControllerID string
	LeaseTTL     time.Duration
	// Blobs is where sources, droplets and buildpacks live: blobsFS ("" too)
	// in <DataDir>/blobs, or blobsNATS in JetStream's object store, which
	// every controller of the NATS cluster shares (docs/architecture.md,
	// "The NATS cluster").
	Blobs string
	// Advertise is the host routers use to reach this controller's API for
	// api.<Domain>; "" = the --api-addr host, or 127.0.0.1 when that is
	// unspecified (docs/architecture.md, "One API address").
	Advertise string
	// BusCredentials, when the controller embeds the NATS server, learn the
	// component credentials the server is to accept.
	BusCredentials *busCredentials
	Logger         *slog.Logger
}

// controllerRole is a running controller: API server, controller loops and
// (optionally) a builder.
type controllerRole struct {
	cfg        controllerConfig
	store      *store.Store
	ctrl       *controller.Controller
	ln         net.Listener
	srv        *http.Server
	apiURL     string
	adminToken string
	tokenFile  string
	// componentTokens are the executor's and router's credentials
	// (<data>/executor.token, <data>/router.token).
	componentTokens map[string]string
	created         bool
}

// startController opens the database and blob store, bootstraps the admin,
// and starts the API listener. Its loops run in run.
func startController(ctx context.Context, cfg controllerConfig, conn *bus.Conn) (*controllerRole, error) {
	log := cfg.Logger
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create data dir %s: %w — choose another with --data", cfg.DataDir, err)
	}
	scfg := store.Config{Driver: "sqlite", DSN: filepath.Join(cfg.DataDir, "strata.db"), Logger: log.With("component", "store")}
	if strings.HasPrefix(cfg.Database, "postgres://") || strings.HasPrefix(cfg.Database, "postgresql://") {
		scfg = store.Config{Driver: "postgres", DSN: cfg.Database, Logger: scfg.Logger}
	} else if cfg.Database != "" {
		scfg.DSN = strings.TrimPrefix(cfg.Database, "sqlite://")
	}
	st, err := store.Open(ctx, scfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	blobs, err := openBlobs(ctx, cfg, conn)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("open blob store: %w", err)
	}
	ctrl, err := controller.New(controller.Config{
		Domain:       cfg.Domain,
		RouterPort:   cfg.RouterPort,
		LogDir:       filepath.Join(cfg.DataDir, "logs"),
		ControllerID: cfg.ControllerID,
		LeaseTTL:     cfg.LeaseTTL,
		Logger:       log.With("component", "controller"),
	}, st, blobs, conn)
	if err != nil {
		st.Close()
		return nil, err
	}
	creds := cfg.CredentialsDir
	if creds == "" {
		creds = cfg.DataDir
	} else if err := os.MkdirAll(creds, 0o700); err != nil {
		st.Close()
		return nil, fmt.Errorf("cannot create --credentials-dir %s: %w", creds, err)
	}
	keyFile := cfg.SecretKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(creds, "secret.key")
	}
	key, err := secretbox.LoadOrCreateKey(keyFile)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("%w — pass --secret-key-file", err)
	}
	box, err := secretbox.New(key)
	if err != nil {
		st.Close()
		return nil, err
	}
	certs := controller.NewCertificates(controller.CertificatesConfig{Store: st, Box: box, Bus: conn, Events: st, Logger: log.With("component", "certificates")})
	r := &controllerRole{cfg: cfg, store: st, ctrl: ctrl, tokenFile: filepath.Join(creds, "admin.token")}
	token, created, err := ctrl.Tenancy.Bootstrap(ctx, "admin")
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("bootstrap admin: %w", err)
	}
	if created {
		if err := os.WriteFile(r.tokenFile, []byte(token+"\n"), 0o600); err != nil {
			st.Close()
			return nil, fmt.Errorf("write %s: %w", r.tokenFile, err)
		}
		r.created = true
	} else {
		b, err := os.ReadFile(r.tokenFile)
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("the admin user exists but %s cannot be read (%v) — restore the file, give the --credentials-dir the other controllers use, or start with a new --data dir", r.tokenFile, err)
		}
		token = strings.TrimSpace(string(b))
	}
	r.adminToken = token
	r.componentTokens = map[string]string{}
	for _, comp := range []string{api.ComponentExecutor, api.ComponentRouter, api.ComponentBuilder} {
		file := filepath.Join(creds, comp+".token")
		current := ""
		if b, err := os.ReadFile(file); err == nil {
			current = strings.TrimSpace(string(b))
		}
		tok, err := ctrl.Tenancy.ComponentToken(ctx, comp, current)
		if err != nil {
			st.Close()
			return nil, err
		}
		if tok != current {
			if err := os.WriteFile(file, []byte(tok+"\n"), 0o600); err != nil {
				st.Close()
				return nil, fmt.Errorf("write %s: %w", file, err)
			}
		}
		r.componentTokens[comp] = tok
	}
	if cfg.BusCredentials != nil {
		cfg.BusCredentials.set(r.componentTokens)
	}

	git, err := gitpush.New(gitpush.Config{
		ReposDir: filepath.Join(cfg.DataDir, "git"),
		Logger:   log.With("component", "gitpush"),
	}, ctrl.Tenancy, ctrl.Deploys)
	if err != nil {
		st.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.APIAddr)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("listen on --api-addr %s: %w — is another stratad running? choose another address", cfg.APIAddr, err)
	}
	r.ln = ln
	r.apiURL = "http://" + ln.Addr().String()
	h := httpapi.New(httpapi.Config{
		Info:   api.Info{Version: version, Domain: cfg.Domain, RouterPort: cfg.RouterPort, API: r.apiURL},
		Logger: log.With("component", "httpapi"),
		// Every controller of the database replays the same keys.
		Idempotency: st,
	}, httpapi.Services{
		Auth: ctrl.Tenancy, Users: ctrl.Users, Orgs: ctrl.Orgs, Quotas: ctrl.Quotas, Buildpacks: ctrl.Buildpacks, Domains: ctrl.Domains, Apps: ctrl.Apps, Deploy: ctrl.Deploys, Logs: ctrl.Logs, Lifecycle: ctrl.Apps,
		Operate: ctrl.Operate(), Placement: ctrl.Placement, Routes: ctrl.Routes,
		Certificates: certs, Blobs: blobs, Nodes: httpapi.NodeListFunc(ctrl.Nodes.List), Git: git,
	})
	console, err := web.New(web.Config{Logger: log.With("component", "web")}, web.Services{
		Auth: ctrl.Tenancy, Users: ctrl.Users, Orgs: ctrl.Orgs, Apps: ctrl.Apps, Lifecycle: ctrl.Apps, Logs: ctrl.Logs,
		Nodes: ctrl.NodeAdmin(), Metrics: ctrl.Apps,
	})
	if err != nil {
		ln.Close()
		st.Close()
		return nil, err
	}
	// The API and git endpoint under /v1/ and /git/, the web console
	// (docs/console.md) everywhere else.
	mux := http.NewServeMux()
	mux.Handle("/v1/", h.Handler())
	mux.Handle("/git/", h.Handler())
	mux.Handle("/", console)
	r.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 1 << 20}
	return r, nil
}

// The blob stores of --blobs.
const (
	blobsFS   = "fs"
	blobsNATS = "nats"
)

// checkBlobs refuses a --blobs value that names no store.
func checkBlobs(kind string) error {
	if kind != "" && kind != blobsFS && kind != blobsNATS {
		return fmt.Errorf("bad --blobs %q — use fs (this controller's data dir) or nats (JetStream's object store, shared by the NATS cluster)", kind)
	}
	return nil
}

// openBlobs opens the blob store cfg.Blobs names. Every blob of the
// controller goes through it: pushes, buildpack uploads and the REST blob
// API (/v1/blobs) that builders and executors fetch and upload through.
func openBlobs(ctx context.Context, cfg controllerConfig, conn *bus.Conn) (api.BlobStore, error) {
	if err := checkBlobs(cfg.Blobs); err != nil {
		return nil, err
	}
	if cfg.Blobs != blobsNATS {
		return blobstore.New(filepath.Join(cfg.DataDir, "blobs"))
	}
	// In a cluster the bucket's stream needs a leader: give up after a
	// minute, as StartServer does for the meta leader.
	octx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return bus.OpenObjects(octx, conn, bus.ObjectsConfig{
		SpoolDir: filepath.Join(cfg.DataDir, "spool"),
		Logger:   cfg.Logger.With("component", "blobs"),
	})
}

// run serves the API and runs the controller (and builder) until ctx ends.
func (r *controllerRole) run(ctx context.Context, conn *bus.Conn) error {
	log := r.cfg.Logger
	errc := make(chan error, 4)
	go func() {
		if err := r.srv.Serve(r.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("api server: %w", err)
		}
	}()
	go func() { errc <- r.ctrl.Run(ctx) }()
	host, port := apiRouteTarget(r.ln.Addr(), r.cfg.Advertise)
	go func() { errc <- r.ctrl.AdvertiseAPI(ctx, host, port) }()
	if r.cfg.Builder {
		buildpacks := filepath.Join(r.cfg.DataDir, "buildpacks")
		if err := os.MkdirAll(buildpacks, 0o755); err != nil {
			return fmt.Errorf("cannot create %s: %w", buildpacks, err)
		}
		stg, err := stager.New(stager.Config{
			WorkDir:      filepath.Join(r.cfg.DataDir, "staging"),
			CacheDir:     filepath.Join(r.cfg.DataDir, "cache"),
			StaticServer: siblingBinary("strata-static"),
			// Custom classic buildpacks, one per subdirectory (docs/buildpacks.md).
			BuildpacksDir: buildpacks,
			// Env nil: builds get the few host variables stager.HostEnv
			// names (PATH, the Go proxy …), never the daemon's whole
			// environment.
			Logger: log.With("component", "stager"),
			Images: dockerfileBuilder(),
		})
		if err != nil {
			return err
		}
		w := &stager.Worker{
			Bus:    conn,
			Blobs:  client.New(r.apiURL, r.componentTokens[api.ComponentBuilder]),
			ID:     "builder-" + hostname(),
			Logger: log.With("component", "builder"),
			Stager: stg,
		}
		go func() {
			if err := w.Run(ctx); err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("builder: %w", err)
			}
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = r.srv.Shutdown(shut)
	_ = r.store.Close()
	return err
}

// apiRouteTarget is the host and port routers send api.<domain> to: the
// advertised host, else the listener's, else (unspecified) loopback.
func apiRouteTarget(addr net.Addr, advertise string) (string, int) {
	tcp, _ := addr.(*net.TCPAddr)
	if tcp == nil {
		return "127.0.0.1", 0
	}
	host := advertise
	if host == "" {
		host = tcp.IP.String()
		if tcp.IP.IsUnspecified() {
			host = "127.0.0.1"
		}
	}
	return host, tcp.Port
}

// runController is `stratad controller`.
func runController(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("controller", stderr)
	data := fs.String("data", defaultDataDir(), "data directory (database, blobs, git repos, logs)")
	apiAddr := fs.String("api-addr", "127.0.0.1:7070", "address of the REST API and git endpoint")
	database := fs.String("database", "", "postgres://… URL (default: SQLite in the data dir)")
	natsURL := fs.String("nats", "", "NATS URL, or several servers of a cluster comma-separated (default: an embedded server; see --nats-listen)")
	natsListen := fs.String("nats-listen", "127.0.0.1:4222", "address of the embedded NATS server when --nats is empty")
	var cluster natsCluster
	fs.StringVar(&cluster.listen, "nats-cluster", "", "host:port the embedded NATS server accepts its cluster's routes on (default: no cluster)")
	fs.StringVar(&cluster.routes, "nats-routes", "", "comma-separated nats-route://host:port of the other embedded servers of the cluster (with --nats-cluster)")
	fs.StringVar(&cluster.secretFile, "nats-cluster-secret-file", "", "file holding the secret every server of the NATS cluster shares (with --nats-cluster)")
	domain := fs.String("domain", "localhost", "app domain: apps answer at <app>.<domain>")
	routerPort := fs.String("router-port", "8080", "router port shown in app URLs")
	builder := fs.Bool("builder", true, "run a build worker in this process")
	controllerID, leaseTTL := leaseFlags(fs, "the hostname and a random suffix")
	credsDir := fs.String("credentials-dir", "", "directory of admin.token, the executor, router and builder credentials (<component>.token) and, by default, secret.key; controllers on one database share it (default: the data dir)")
	secretKeyFile := fs.String("secret-key-file", "", "file holding the key that encrypts secrets at rest, such as uploaded TLS private keys (created 0600 if missing; default <credentials-dir>/secret.key)")
	initOnly := fs.Bool("init-only", false, "migrate the database, create the admin and the component credentials in --credentials-dir and the secret key, then exit: run once before several controllers share one database, so that they do not race to create them")
	advertise := fs.String("advertise", "", "host routers use to reach this controller's API, registered as api.<domain> (default: the --api-addr host, or 127.0.0.1 when it listens on all addresses)")
	blobs := fs.String("blobs", blobsFS, "where sources, droplets and buildpacks live: fs (<data>/blobs, this controller's disk) or nats (JetStream's object store, shared by every controller on the NATS cluster)")
	log, err := parseRole(fs, args, stderr, "info")
	if err != nil {
		return err
	}
	if err := checkBlobs(*blobs); err != nil {
		return err
	}
	creds := &busCredentials{}
	conn, closeBus, err := connectOrEmbed(ctx, *natsURL, *natsListen, cluster, filepath.Join(*data, "nats"), "controller", creds, log)
	if err != nil {
		return err
	}
	defer closeBus()
	r, err := startController(ctx, controllerConfig{DataDir: *data, APIAddr: *apiAddr, Database: *database,
		Domain: *domain, RouterPort: *routerPort, Builder: *builder, CredentialsDir: *credsDir, SecretKeyFile: *secretKeyFile, ControllerID: *controllerID, LeaseTTL: *leaseTTL, Blobs: *blobs, Advertise: *advertise, BusCredentials: creds, Logger: log}, conn)
	if err != nil {
		return err
	}
	if *initOnly {
		r.ln.Close()
		r.store.Close()
		fmt.Fprintf(stdout, "Strata controller %s: database and credentials ready (admin token %s)\n", version, r.tokenFile)
		return nil
	}
	fmt.Fprintf(stdout, "Strata controller %s\n  API:   %s\n  login: strata login --api %s --token-file %s\n  console: %s/\n", version, r.apiURL, r.apiURL, r.tokenFile, r.apiURL)
	return r.run(ctx, conn)
}

// natsCluster is the NATS cluster the embedded server joins
// (docs/architecture.md, "The NATS cluster"); zero: it stands alone.
type natsCluster struct {
	listen, routes, secretFile string
}

// apply adds the cluster to cfg.
func (c natsCluster) apply(cfg *bus.ServerConfig) error {
	if c.listen == "" {
		if c.routes != "" || c.secretFile != "" {
			return fmt.Errorf("--nats-routes and --nats-cluster-secret-file need --nats-cluster HOST:PORT")
		}
		return nil
	}
	if c.secretFile == "" {
		return fmt.Errorf("--nats-cluster needs --nats-cluster-secret-file FILE, the same secret on every server of the cluster")
	}
	b, err := os.ReadFile(c.secretFile)
	if err != nil {
		return fmt.Errorf("read --nats-cluster-secret-file: %w", err)
	}
	cfg.ClusterSecret = strings.TrimSpace(string(b))
	if cfg.ClusterSecret == "" {
		return fmt.Errorf("--nats-cluster-secret-file %s is empty", c.secretFile)
	}
	cfg.Cluster = c.listen
	for _, r := range strings.Split(c.routes, ",") {
		if r = strings.TrimSpace(r); r != "" {
			cfg.Routes = append(cfg.Routes, r)
		}
	}
	return nil
}

// connectOrEmbed connects to natsURL (several servers comma-separated), or
// starts an embedded server listening on listen (JetStream stored in
// storeDir), in cluster when given one, and connects to it in-process.
// The embedded server lets in only the components whose credentials creds
// holds, each with its own subject permissions, and this process.
func connectOrEmbed(ctx context.Context, natsURL, listen string, cluster natsCluster, storeDir, name string, creds *busCredentials, log *slog.Logger) (*bus.Conn, func(), error) {
	if natsURL != "" {
		if cluster != (natsCluster{}) {
			return nil, nil, fmt.Errorf("--nats-cluster, --nats-routes and --nats-cluster-secret-file are for the embedded server — drop them with --nats")
		}
		conn, err := bus.Connect(ctx, natsURL, bus.Options{Name: name, Logger: log.With("component", "bus")})
		if err != nil {
			return nil, nil, err
		}
		return conn, conn.Close, nil
	}
	secret := processSecret()
	cfg := bus.ServerConfig{Port: -1, StoreDir: storeDir, Logger: log, Auth: bus.ComponentAuth(secret, creds.get)}
	if listen != "" {
		host, port, err := net.SplitHostPort(listen)
		if err != nil {
			return nil, nil, fmt.Errorf("bad --nats-listen %q: %v — use host:port", listen, err)
		}
		var p int
		if _, err := fmt.Sscan(port, &p); err != nil {
			return nil, nil, fmt.Errorf("bad --nats-listen port %q — use host:port", port)
		}
		cfg.Host, cfg.Port = host, p
	}
	if err := cluster.apply(&cfg); err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(storeDir, 0o700); err != nil {
		return nil, nil, err
	}
	srv, err := bus.StartServer(cfg)
	if err != nil {
		return nil, nil, err
	}
	conn, err := bus.Connect(ctx, "", bus.Options{Name: name, Server: srv, User: bus.ControllerUser, Password: secret, Logger: log.With("component", "bus")})
	if err != nil {
		srv.Shutdown()
		return nil, nil, err
	}
	return conn, func() { conn.Close(); srv.Shutdown() }, nil
}

// siblingBinary returns the path of a binary installed next to stratad.
func siblingBinary(name string) string {
	exe, err := os.Executable()
	if err != nil {
		return name
	}
	return filepath.Join(filepath.Dir(exe), name)
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "local"
	}
	return h
}

// leaseFlags adds --controller-id and --lease-ttl, the leader lease of the
// controller (docs/architecture.md, "Leader lease").
func leaseFlags(fs *flag.FlagSet, defaultID string) (id *string, ttl *time.Duration) {
	id = fs.String("controller-id", "", "name this controller holds the leader lease under; never the same for two running controllers (default: "+defaultID+")")
	ttl = fs.Duration("lease-ttl", controller.DefaultConfig().LeaseTTL, "time to live of the leader lease: a controller that cannot renew it stops acting within 2/3 of it; another takes over after it")
	return id, ttl
}

// microcloudID is the microcloud's lease holder name: the one given, else
// microcloud-<hostname>, the same across restarts — a microcloud is its
// only controller, so after a crash it renews its own lease at once
// instead of waiting for it to expire.
func microcloudID(given string) string {
	if given != "" {
		return given
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return "microcloud-" + host
}
