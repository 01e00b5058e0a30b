package router_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/strata-paas/strata/router"
	"github.com/strata-paas/strata/router/registry"
)

// writeCert writes a self-signed NAME.crt/NAME.key for names into dir and
// adds it to pool.
func writeCert(t *testing.T, dir, file string, pool *x509.CertPool, names ...string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, file+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, file+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool.AddCert(c)
}

func TestTLSTerminationSNIAndHTTP2(t *testing.T) {
	dir := t.TempDir()
	pool := x509.NewCertPool()
	writeCert(t, dir, "a", pool, "a.localhost")
	writeCert(t, dir, "wild", pool, "*.b.localhost")
	store, err := router.LoadCertDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	log := testLogger(t)
	reg := registry.New(registry.Config{Logger: log})
	h := &harness{t: t, reg: reg}
	be := backend(t, "secure")
	h.register("a.localhost", be.URL, "a-0", "a")
	h.register("x.b.localhost", backend(t, "secure").URL, "b-0", "b")
	p := router.New(router.Config{}, reg, log)
	t.Cleanup(p.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- router.NewServer(router.Config{}, p, log).ServeTLS(ctx, ln, store.TLSConfig()) }()
	t.Cleanup(func() { cancel(); <-done })

	for _, tt := range []struct{ host, wantCN string }{
		{"a.localhost", "a.localhost"},
		{"x.b.localhost", "*.b.localhost"},
	} {
		tr := &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: tt.host},
			ForceAttemptHTTP2: true,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, ln.Addr().String())
			},
		}
		client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		resp, err := client.Get("https://" + tt.host + "/")
		if err != nil {
			t.Fatalf("%s: %v", tt.host, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		if resp.StatusCode != 200 || string(body) != "secure" {
			t.Errorf("%s: got %d %q", tt.host, resp.StatusCode, body)
		}
		if resp.Proto != "HTTP/2.0" {
			t.Errorf("%s: client spoke %s, want HTTP/2.0", tt.host, resp.Proto)
		}
		if cn := resp.TLS.PeerCertificates[0].Subject.CommonName; cn != tt.wantCN {
			t.Errorf("%s: served certificate %q, want %q", tt.host, cn, tt.wantCN)
		}
		if got := resp.Header.Get("X-Seen-XFP"); got != "https" {
			t.Errorf("%s: backend saw X-Forwarded-Proto %q, want https", tt.host, got)
		}
	}
}

func TestLoadCertDirErrors(t *testing.T) {
	empty := t.TempDir()
	if _, err := router.LoadCertDir(empty); err == nil {
		t.Error("empty directory: want an error")
	}
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "x.crt"), []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := router.LoadCertDir(bad); err == nil {
		t.Error("certificate without key: want an error")
	}
}

func TestRedirectToHTTPS(t *testing.T) {
	tests := []struct{ port, host, target, want string }{
		{"443", "app.localhost:80", "/a/b?q=1", "https://app.localhost/a/b?q=1"},
		{"8443", "App.Localhost", "/", "https://app.localhost:8443/"},
		{"443", "[::1]:80", "/x", "https://[::1]/x"},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", tt.target, nil)
		req.Host = tt.host
		router.RedirectToHTTPS(tt.port, nil).ServeHTTP(rec, req)
		if rec.Code != http.StatusPermanentRedirect || rec.Header().Get("Location") != tt.want {
			t.Errorf("%s%s: got %d %q, want 308 %q", tt.host, tt.target, rec.Code, rec.Header().Get("Location"), tt.want)
		}
	}
	rec := httptest.NewRecorder()
	router.RedirectToHTTPS("443", nil).ServeHTTP(rec, httptest.NewRequest("GET", "/.well-known/acme-challenge/tok", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("acme challenge: got %d, want it passed on (404 without a handler)", rec.Code)
	}
}
