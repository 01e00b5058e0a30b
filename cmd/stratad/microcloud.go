package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/client"
	"github.com/strata-paas/strata/deploy/executor"
)

// runMicrocloud is `stratad microcloud`: an embedded NATS server, the
// controller with a builder, the router and one executor, in one process. The
// parts talk to each other only through NATS and HTTP, as across machines.
func runMicrocloud(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	started := time.Now()
	fs := newFlagSet("microcloud", stderr)
	data := fs.String("data", defaultDataDir(), "data directory")
	apiAddr := fs.String("api-addr", "127.0.0.1:7070", "address of the REST API and git endpoint")
	routerAddr := fs.String("router-addr", "127.0.0.1:8080", "address of the app router")
	routerTLSAddr := fs.String("router-tls-addr", "", "also serve apps over HTTPS on this address, with the certificates uploaded with strata certs add, chosen by SNI (empty: off)")
	domain := fs.String("domain", "localhost", "app domain: apps answer at http://<app>.<domain>:<router port>")
	natsListen := fs.String("nats-listen", "", "also expose the embedded NATS server on this address (for extra executors)")
	controllerID, leaseTTL := leaseFlags(fs, "microcloud-<hostname>, kept across restarts")
	drivers := fs.String("drivers", "", "drivers of the node: process, docker, microvm (default: every one that works on this host)")
	tuning := addInstanceTuning(fs)
	pnet := addProcessNet(fs)
	acme := addACMEFlags(fs, "--router-tls-addr")
	log, err := parseRole(fs, args, stderr, "warn")
	if err != nil {
		return err
	}
	if acme.enabled() && *routerTLSAddr == "" {
		return fmt.Errorf("ACME certificates are served over HTTPS — add --router-tls-addr ADDR")
	}
	exCfg := executor.Config{
		DataDir:       filepath.Join(*data, "executor"),
		AdvertiseHost: "127.0.0.1",
		Substrate:     "auto",
		StopOnExit:    true,
		Logger:        log.With("component", "executor"),
	}
	if err := tuning.apply(&exCfg); err != nil {
		return err
	}
	creds := &busCredentials{}
	conn, closeBus, err := connectOrEmbed(ctx, "", *natsListen, natsCluster{}, filepath.Join(*data, "nats"), "microcloud", creds, log)
	if err != nil {
		return err
	}
	defer closeBus()

	rt, err := startRouter(ctx, *routerAddr, *domain, conn, log)
	if err != nil {
		return err
	}
	_, routerPort, _ := net.SplitHostPort(rt.ln.Addr().String())

	ctrl, err := startController(ctx, controllerConfig{DataDir: *data, APIAddr: *apiAddr, Domain: *domain, ControllerID: microcloudID(*controllerID), LeaseTTL: *leaseTTL,
		RouterPort: routerPort, Builder: true, BusCredentials: creds, Logger: log}, conn)
	if err != nil {
		rt.ln.Close()
		return err
	}
	// The docker driver labels containers with the node id.
	if exCfg.NodeID, err = executor.LoadNodeID(exCfg.DataDir); err != nil {
		rt.ln.Close()
		return err
	}
	drvs, err := openDrivers(ctx, *drivers, driverEnv{dataDir: exCfg.DataDir, nodeID: exCfg.NodeID, advertise: exCfg.AdvertiseHost,
		processNet: pnet, routers: routerAddrs(rt, *routerTLSAddr), log: log})
	if err != nil {
		rt.ln.Close()
		return err
	}
	ex, err := executor.New(exCfg, conn, client.New(ctrl.apiURL, ctrl.componentTokens[api.ComponentExecutor]), drvs...)
	if err != nil {
		rt.ln.Close()
		return err
	}
	if acme.enabled() {
		if rt.acme, err = acme.build(rt.reg, filepath.Join(*data, "acme")); err != nil {
			rt.ln.Close()
			return err
		}
	}
	if *routerTLSAddr != "" {
		if err := rt.listenTLS(*routerTLSAddr, "", client.New(ctrl.apiURL, ctrl.componentTokens[api.ComponentRouter]).RouterCertificates); err != nil {
			rt.ln.Close()
			return err
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 3)
	go func() { errc <- rt.run(ctx) }()
	go func() { errc <- ex.Run(ctx) }()
	go func() { errc <- ctrl.run(ctx, conn) }()

	fmt.Fprintf(stdout, "Strata microcloud %s is up (%s)\n", version, time.Since(started).Round(time.Millisecond))
	fmt.Fprintf(stdout, "  API:     %s\n", ctrl.apiURL)
	fmt.Fprintf(stdout, "  login:   strata login --api %s --token-file %s\n", ctrl.apiURL, ctrl.tokenFile)
	fmt.Fprintf(stdout, "  console: %s/ (log in with the admin token, or a user's password)\n", ctrl.apiURL)
	fmt.Fprintf(stdout, "  apps:    http://<app>.%s:%s\n", *domain, routerPort)
	if rt.tlsLn != nil {
		_, tlsPort, _ := net.SplitHostPort(rt.tlsLn.Addr().String())
		fmt.Fprintf(stdout, "  https:   https://<app>.%s:%s (certificates: strata certs add)\n", *domain, tlsPort)
	}
	fmt.Fprintf(stdout, "  data:    %s\n", *data)

	// The first part to stop ends the microcloud; the rest stop with ctx.
	var first error
	pending := 3
	select {
	case <-ctx.Done():
	case first = <-errc:
		pending--
	}
	cancel()
	for ; pending > 0; pending-- {
		<-errc
	}
	return first
}
