package router_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-paas/strata/api/certtest"
	"github.com/strata-paas/strata/router"
	"github.com/strata-paas/strata/router/registry"
)

// buildPebble builds Let's Encrypt's Pebble ACME test server and its DNS
// companion (tool dependencies in go.mod) into a temp dir.
func buildPebble(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		if os.Getenv("CI") != "" || os.Getenv("STRATA_REQUIRE") != "" {
			t.Fatalf("go is required to build Pebble: %v", err)
		}
		t.Skipf("go not found (needed to build Pebble): %v", err)
	}
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+"/",
		"github.com/letsencrypt/pebble/v2/cmd/pebble", "github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build pebble: %v\n%s", err, out)
	}
	return dir
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startProc(t *testing.T, env []string, bin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = testWriter{t}, testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
}

// TestACMEWithPebble issues a certificate from a real ACME server (Pebble)
// for a routed host, validated over HTTP-01 or TLS-ALPN-01 against the
// router's own listeners on loopback; an unrouted host gets none, and an
// uploaded certificate wins over ACME for the names it covers.
func TestACMEWithPebble(t *testing.T) {
	bin := buildPebble(t)
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

	// Pebble serves its API over TLS with a certificate of our own.
	dir := t.TempDir()
	own := certtest.New(t, certtest.Options{DNSNames: []string{"localhost"}})
	os.WriteFile(filepath.Join(dir, "cert.pem"), []byte(own.CertPEM), 0o600)
	os.WriteFile(filepath.Join(dir, "key.pem"), []byte(own.KeyPEM), 0o600)
	apiPort, mgmtPort, dnsPort, dnsMgmtPort := freePort(t), freePort(t), freePort(t), freePort(t)
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  fmt.Sprintf("127.0.0.1:%d", apiPort),
		"managementListenAddress":        fmt.Sprintf("127.0.0.1:%d", mgmtPort),
		"certificate":                    filepath.Join(dir, "cert.pem"),
		"privateKey":                     filepath.Join(dir, "key.pem"),
		"httpPort":                       plainPort,
		"tlsPort":                        tlsPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
	}}
	b, _ := json.Marshal(cfg)
	os.WriteFile(filepath.Join(dir, "pebble.json"), b, 0o600)
	// Every name resolves to 127.0.0.1 through Pebble's DNS companion.
	startProc(t, nil, filepath.Join(bin, "pebble-challtestsrv"),
		"-dnsserver", fmt.Sprintf("127.0.0.1:%d", dnsPort), "-management", fmt.Sprintf("127.0.0.1:%d", dnsMgmtPort),
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")
	startProc(t, []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0"}, filepath.Join(bin, "pebble"),
		"-config", filepath.Join(dir, "pebble.json"), "-dnsserver", fmt.Sprintf("127.0.0.1:%d", dnsPort))

	pebbleHTTP := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: own.Pool()}}}
	directory := fmt.Sprintf("https://localhost:%d/dir", apiPort)
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := pebbleHTTP.Get(directory)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble did not start: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	acme, err := router.NewACME(router.ACMEConfig{
		Email: "ops@example.test", DirectoryURL: directory, CacheDir: filepath.Join(dir, "acme"),
		RootCAs: own.Pool(), Routed: router.RoutedIn(reg),
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
	res, err := pebbleHTTP.Get(fmt.Sprintf("https://localhost:%d/roots/0", mgmtPort))
	if err != nil {
		t.Fatal(err)
	}
	rootPEM, _ := io.ReadAll(res.Body)
	res.Body.Close()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("pebble root: %q", rootPEM)
	}
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
