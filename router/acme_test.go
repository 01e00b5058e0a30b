package router_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-paas/strata/api/certtest"
	"github.com/strata-paas/strata/router"
	"github.com/strata-paas/strata/router/acmetest"
	"github.com/strata-paas/strata/router/registry"
)

// TestACMEWithPebble issues a certificate from a real ACME server (Pebble)
// for a routed host, validated over HTTP-01 or TLS-ALPN-01 against the
// router's own listeners on loopback; an unrouted host gets none, and an
// uploaded certificate wins over ACME for the names it covers.
func TestACMEWithPebble(t *testing.T) {
	log := testLogger(t)
	reg := registry.New(registry.Config{Logger: log})
	h := &harness{t: t, reg: reg}
	h.register("app.example.test", backend(t, "acme-app").URL, "a-0", "app")
	h.register("up.example.test", backend(t, "uploaded").URL, "u-0", "up")

	plainLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	plainPort := plainLn.Addr().(*net.TCPAddr).Port
	tlsPort := tlsLn.Addr().(*net.TCPAddr).Port

	pebble := acmetest.Start(t, plainPort, tlsPort)
	acme, err := router.NewACME(router.ACMEConfig{
		Email: "ops@example.test", DirectoryURL: pebble.Directory, CacheDir: filepath.Join(t.TempDir(), "acme"),
		RootCAs: pebble.APIRoots, Routed: router.RoutedIn(reg),
	})
	if err != nil {
		t.Fatal(err)
	}
	uploaded := certtest.New(t, certtest.Options{DNSNames: []string{"up.example.test"}})
	upCert, _ := tls.X509KeyPair([]byte(uploaded.CertPEM), []byte(uploaded.KeyPEM))
	store := router.NewCertStore()
	store.SetFallback(acme.GetCertificate)
	store.SetCertificates([]tls.Certificate{upCert})

	p := router.New(router.Config{}, reg, log)
	t.Cleanup(p.Close)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() {
		router.NewServer(router.Config{}, router.RedirectToHTTPS(strconv.Itoa(tlsPort), acme.HTTPHandler(nil)), log).Serve(ctx, plainLn)
		done <- struct{}{}
	}()
	go func() {
		router.NewServer(router.Config{}, p, log).ServeTLS(ctx, tlsLn, store.TLSConfig())
		done <- struct{}{}
	}()
	t.Cleanup(func() { cancel(); <-done; <-done })

	// Trust Pebble's (random, per run) root for the issued certificates.
	roots := pebble.Roots(t)
	roots.AddCert(uploaded.Cert)

	get := func(host string) (string, *x509.Certificate, error) {
		c := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{ServerName: host, RootCAs: roots},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, tlsLn.Addr().String())
			},
		}}
		res, err := c.Get("https://" + host + "/")
		if err != nil {
			return "", nil, err
		}
		defer res.Body.Close()
		return res.Header.Get("X-Backend"), res.TLS.PeerCertificates[0], nil
	}

	tests := []struct {
		host       string
		wantErr    bool
		wantIssuer string // substring of the leaf's issuer
		wantBody   string
	}{
		{"app.example.test", false, "Pebble", "acme-app"},
		{"app.example.test", false, "Pebble", "acme-app"}, // from autocert's cache now
		{"up.example.test", false, "Strata test", "uploaded"},
		{"unrouted.example.test", true, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.host, func(t *testing.T) {
			backendName, leaf, err := get(tc.host)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got a certificate from %s for an unrouted host", leaf.Issuer)
				}
				return
			}
			if err != nil {
				t.Fatalf("HTTPS: %v", err)
			}
			if !strings.Contains(leaf.Issuer.String(), tc.wantIssuer) || backendName != tc.wantBody {
				t.Fatalf("issuer %q backend %q, want issuer with %q and backend %q", leaf.Issuer, backendName, tc.wantIssuer, tc.wantBody)
			}
		})
	}
}
