package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/bus"
	"github.com/strata-paas/strata/api/client"
	"github.com/strata-paas/strata/router"
	"github.com/strata-paas/strata/router/registry"
)

// routerRole is a running router: the route registry fed over NATS and the proxy.
type routerRole struct {
	ln       net.Listener
	admin    net.Listener // serves /metrics when set
	tlsLn    net.Listener // serves HTTPS with certs when set
	certs    *router.CertStore
	certSync *router.CertSync // fetches uploaded certificates when set
	acme     *router.ACME     // orders certificates for routed hosts when set
	redirect bool             // the plain listener redirects to HTTPS
	cfg      router.Config
	proxy    *router.Proxy
	reg      *registry.Registry
	activity *router.ActivityReporter
	stop     func()
	conn     *bus.Conn
	log      *slog.Logger
}

// routerHold is how requests for a route whose instances are restarting are
// held (router.Config.HoldTimeout etc.); stratad router sets it from flags.
var routerHold = struct {
	timeout time.Duration
	max     int
	body    int64
}{router.DefaultHoldTimeout, router.DefaultHoldMaxPerRoute, router.DefaultHoldMaxBody}

// startRouter listens on addr and subscribes the registry to the bus.
func startRouter(ctx context.Context, addr, domain string, conn *bus.Conn, log *slog.Logger) (*routerRole, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on router address %s: %w — is another router running? choose another address", addr, err)
	}
	reg := registry.New(registry.Config{Logger: log.With("component", "registry")})
	id := "router-" + hostname()
	stop, err := registry.Subscribe(ctx, conn, reg, api.RouterStart{ID: id})
	if err != nil {
		ln.Close()
		return nil, err
	}
	cfg := router.DefaultConfig()
	cfg.Domain = domain
	cfg.AccessLog = func(e api.LogEnvelope) {
		if e.AppID != "" { // an endpoint of an executor older than log streams by app ID has none
			_ = conn.Publish(api.SubjectLogs(e.AppID), e)
		}
	}
	// Scale to zero: a request held for a sleeping route asks the
	// controllers for an instance, and the routes that served are reported
	// every few seconds for the idle times (docs/architecture.md).
	cfg.Wake = func(w api.RouterWake) {
		if err := conn.Publish(api.SubjectRouterWake, w); err != nil {
			log.Warn("router.wake_failed", "app", w.App, "err", err)
		}
	}
	activity := &router.ActivityReporter{Registry: reg, RouterID: id, Publish: func(m api.RouterActivity) {
		if err := conn.Publish(api.SubjectRouterActivity, m); err != nil {
			log.Warn("router.activity_failed", "err", err)
		}
	}}
	cfg.Metrics = router.NewMetrics(reg)
	cfg.HoldTimeout, cfg.HoldMaxPerRoute, cfg.HoldMaxBody = routerHold.timeout, routerHold.max, routerHold.body
	proxy := router.New(cfg, reg, log.With("component", "router"))
	return &routerRole{ln: ln, cfg: cfg, proxy: proxy, reg: reg, activity: activity, stop: stop, conn: conn, log: log}, nil
}

func (r *routerRole) run(ctx context.Context) error {
	defer r.stop()
	go r.reg.Run(ctx)
	go r.activity.Run(ctx)
	if r.admin != nil {
		admin := router.NewServer(r.cfg, router.AdminHandler(r.cfg.Metrics), r.log.With("component", "router-admin"))
		go func() {
			if err := admin.Serve(ctx, r.admin); err != nil {
				r.log.Warn("router.admin_failed", "err", err)
			}
		}()
	}
	var plain http.Handler = r.proxy
	if r.certSync != nil {
		go r.certSync.Run(ctx, r.certChanges())
	}
	if r.tlsLn != nil {
		tlsSrv := router.NewServer(r.cfg, r.proxy, r.log.With("component", "router-tls"))
		go func() {
			if err := tlsSrv.ServeTLS(ctx, r.tlsLn, r.certs.TLSConfig()); err != nil {
				r.log.Warn("router.tls_failed", "err", err)
			}
		}()
		var challenges http.Handler
		if r.acme != nil {
			challenges = r.acme.HTTPHandler(nil)
			plain = r.acme.HTTPHandler(r.proxy)
		}
		if r.redirect {
			_, port, _ := net.SplitHostPort(r.tlsLn.Addr().String())
			plain = router.RedirectToHTTPS(port, challenges)
		}
	}
	srv := router.NewServer(r.cfg, plain, r.log.With("component", "router"))
	return srv.Serve(ctx, r.ln)
}

// listenTLS serves HTTPS on addr with the certificates of certDir (if
// any) and, when fetch is set, the ones uploaded through the API, fetched at
// start, on every change notice on the bus and every minute.
func (r *routerRole) listenTLS(addr, certDir string, fetch func(context.Context) ([]api.CertificateKeyPair, error)) error {
	var err error
	if certDir != "" {
		if r.certs, err = router.LoadCertDir(certDir); err != nil {
			return err
		}
	} else {
		if fetch == nil && r.acme == nil {
			return fmt.Errorf("HTTPS needs certificates — pass --tls-cert-dir, --controller with --token-file (certificates uploaded with strata certs add), or --acme-cache with --acme-email")
		}
		r.certs = router.NewCertStore()
	}
	if r.acme != nil {
		r.certs.SetFallback(r.acme.GetCertificate)
	}
	if fetch != nil {
		r.certSync = &router.CertSync{Fetch: fetch, Store: r.certs, Logger: r.log.With("component", "router-certs")}
	}
	if r.tlsLn, err = net.Listen("tcp", addr); err != nil {
		return fmt.Errorf("listen on router TLS address %s: %w — choose another address", addr, err)
	}
	return nil
}

// certChanges returns a channel that fires on every certificate change
// notice and on every reconnection to NATS (a notice may have been missed).
func (r *routerRole) certChanges() <-chan struct{} {
	ch := make(chan struct{}, 1)
	kick := func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	if _, err := bus.SubscribeJSON(r.conn, api.SubjectCertificatesChanged, "", func(_ string, _ *api.CertificatesChanged) { kick() }); err != nil {
		r.log.Warn("router.certificates_subscribe_failed", "err", err)
	}
	r.conn.OnConnectionChange(func(up bool) {
		if up {
			kick()
		}
	})
	return ch
}

// runRouter is `stratad router`.
func runRouter(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("router", stderr)
	natsURL := fs.String("nats", "nats://127.0.0.1:4222", "NATS URL, or several servers of a cluster comma-separated")
	listen := fs.String("listen", "127.0.0.1:8080", "address to serve HTTP on")
	domain := fs.String("domain", "localhost", "app domain")
	tlsAddr := fs.String("tls-listen", "", "address to serve HTTPS on (needs --tls-cert-dir)")
	certDir := fs.String("tls-cert-dir", "", "directory of NAME.crt/NAME.key PEM pairs, chosen by SNI")
	redirect := fs.Bool("redirect-https", false, "answer plain HTTP with a redirect to HTTPS")
	adminAddr := fs.String("admin-listen", "", "address to serve Prometheus /metrics and /healthz on (empty: off)")
	ctrlURL := fs.String("controller", "", "controller API URL: serve the TLS certificates uploaded with strata certs add (needs an admin token)")
	tokenFile := fs.String("token-file", "", "file holding the router credential, <data>/router.token of the controller: for its NATS server and --controller (or set STRATA_TOKEN)")
	token := fs.String("token", "", "admin API token for --controller")
	fs.DurationVar(&routerHold.timeout, "hold-timeout", router.DefaultHoldTimeout, "how long a request for a route whose instances are restarting waits for one (then 503; 0: 503 at once)")
	fs.IntVar(&routerHold.max, "hold-max", router.DefaultHoldMaxPerRoute, "most requests held per route (past it: 503 at once)")
	fs.Int64Var(&routerHold.body, "hold-max-body", router.DefaultHoldMaxBody, "largest request body (bytes, declared Content-Length) that may be held")
	acme := addACMEFlags(fs, "--tls-listen")
	log, err := parseRole(fs, args, stderr, "info")
	if err != nil {
		return err
	}
	useACME := acme.enabled()
	if useACME && *tlsAddr == "" {
		return fmt.Errorf("ACME certificates are served over HTTPS — add --tls-listen ADDR")
	}
	// The router credential opens the controller's NATS server (when it
	// requires one) and, with --controller, the certificate endpoint.
	tok := ""
	if *token != "" || *tokenFile != "" || *ctrlURL != "" {
		if tok, err = readToken(*token, *tokenFile); err != nil {
			return err
		}
	}
	bopts := bus.Options{Name: "router", Logger: log.With("component", "bus")}
	if tok != "" {
		bopts.User, bopts.Password = bus.RouterUser(hostname()), tok
	}
	conn, err := bus.Connect(ctx, *natsURL, bopts)
	if err != nil {
		return err
	}
	defer conn.Close()
	r, err := startRouter(ctx, *listen, *domain, conn, log)
	if err != nil {
		return err
	}
	var fetch func(context.Context) ([]api.CertificateKeyPair, error)
	if *ctrlURL != "" {
		fetch = client.New(*ctrlURL, tok).RouterCertificates
	}
	if useACME {
		if r.acme, err = acme.build(r.reg, ""); err != nil {
			r.ln.Close()
			return err
		}
	}
	if *tlsAddr == "" && (*certDir != "" || fetch != nil) {
		r.ln.Close()
		return fmt.Errorf("--tls-cert-dir and --controller give certificates for HTTPS — add --tls-listen ADDR to serve it")
	}
	if *tlsAddr != "" {
		if err := r.listenTLS(*tlsAddr, *certDir, fetch); err != nil {
			r.ln.Close()
			return err
		}
		r.redirect = *redirect
		fmt.Fprintf(stdout, "Strata router HTTPS on https://%s\n", r.tlsLn.Addr())
	}
	if *adminAddr != "" {
		if r.admin, err = net.Listen("tcp", *adminAddr); err != nil {
			r.ln.Close()
			return fmt.Errorf("listen on router admin address %s: %w — choose another --admin-listen", *adminAddr, err)
		}
		fmt.Fprintf(stdout, "Strata router metrics on http://%s/metrics\n", r.admin.Addr())
	}
	fmt.Fprintf(stdout, "Strata router %s listening on http://%s\n", version, r.ln.Addr())
	return r.run(ctx)
}
