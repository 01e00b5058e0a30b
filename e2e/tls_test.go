package e2e_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/certtest"
	"github.com/strata-paas/strata/router/acmetest"
)

// TestTLSUploadedCertificate uploads a certificate with strata certs add and
// reaches a pushed app over HTTPS (HTTP/2) through the microcloud's router,
// with the certificate chosen by SNI.
func TestTLSUploadedCertificate(t *testing.T) {
	require(t, "go")
	data := t.TempDir()
	p := start(t, "stratad microcloud", nil, "stratad", "microcloud",
		"--data", data, "--api-addr", "127.0.0.1:0", "--router-addr", "127.0.0.1:0", "--router-tls-addr", "127.0.0.1:0")
	apiURL := p.waitLine(`API:\s+(http://\S+)`, 60*time.Second)[1]
	tlsPort := p.waitLine(`https:\s+https://<app>\.localhost:(\d+)`, 10*time.Second)[1]
	tlsAddr := "127.0.0.1:" + tlsPort
	if fi, err := os.Stat(filepath.Join(data, "secret.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret.key: %v; want a 0600 file", err)
	}
	c := newCLI(t)
	c.must("", "strata", "login", "--api", apiURL, "--token-file", filepath.Join(data, "admin.token"))
	c.must("", "strata", "push", "site", "-p", filepath.Join(repoRoot(), "examples", "static-site"))

	cert := certtest.New(t, certtest.Options{DNSNames: []string{"site.localhost"}})
	dir := t.TempDir()
	crt, key := filepath.Join(dir, "site.crt"), filepath.Join(dir, "site.key")
	os.WriteFile(crt, []byte(cert.CertPEM), 0o600)
	os.WriteFile(key, []byte(cert.KeyPEM), 0o600)
	out := c.must("", "strata", "certs", "add", crt, key)
	if !strings.Contains(out, "site.localhost") {
		t.Fatalf("certs add: %s", out)
	}
	var list []api.Certificate
	if err := json.Unmarshal([]byte(c.must("", "strata", "certs", "--json")), &list); err != nil || len(list) != 1 || list[0].Name != "site.localhost" {
		t.Fatalf("certs --json: %v %+v", err, list)
	}

	// The router learns of the upload from the change notice; poll until
	// the handshake verifies against the uploaded certificate.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{ServerName: "site.localhost", RootCAs: cert.Pool()},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, tlsAddr)
		},
	}}
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for {
		res, err := client.Get("https://site.localhost/")
		if err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == 200 && strings.Contains(string(b), "Hello from a static site") {
				if res.Proto != "HTTP/2.0" {
					t.Errorf("HTTPS spoke %s, want HTTP/2.0", res.Proto)
				}
				break
			}
			last = fmt.Sprintf("status %d body %q", res.StatusCode, tail(string(b), 200))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("https://site.localhost via %s: no 200 within 30s; last: %s", tlsAddr, last)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Removing the certificate stops the router serving it.
	c.must("", "strata", "certs", "remove", "site.localhost")
	deadline = time.Now().Add(30 * time.Second)
	for {
		client.Transport.(*http.Transport).CloseIdleConnections()
		_, err := client.Get("https://site.localhost/")
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the router still serves a removed certificate")
		}
		time.Sleep(100 * time.Millisecond)
	}
	keyLine := strings.Split(cert.KeyPEM, "\n")[1]
	for _, l := range p.output() {
		if strings.Contains(l, keyLine) {
			t.Fatal("the private key appears in the microcloud's output")
		}
	}
}

// TestMicrocloudACME: a microcloud started with the --acme-* flags gets a
// certificate from a real ACME server (Pebble, validating over loopback) for
// a pushed app's host, and serves the app over HTTPS with it.
func TestMicrocloudACME(t *testing.T) {
	require(t, "go")
	plain, secure := freeAddr(t), freeAddr(t)
	_, plainPort, _ := net.SplitHostPort(plain)
	_, tlsPort, _ := net.SplitHostPort(secure)
	hp, _ := strconv.Atoi(plainPort)
	tp, _ := strconv.Atoi(tlsPort)
	pebble := acmetest.Start(t, hp, tp)

	data := t.TempDir()
	p := start(t, "stratad microcloud", nil, "stratad", "microcloud",
		"--data", data, "--api-addr", "127.0.0.1:0", "--router-addr", plain, "--router-tls-addr", secure,
		"--domain", "example.test", "--acme-email", "ops@example.test",
		"--acme-directory", pebble.Directory, "--acme-ca-file", pebble.APICAFile)
	apiURL := p.waitLine(`API:\s+(http://\S+)`, 60*time.Second)[1]
	c := newCLI(t)
	c.must("", "strata", "login", "--api", apiURL, "--token-file", filepath.Join(data, "admin.token"))
	c.must("", "strata", "push", "site", "-p", filepath.Join(repoRoot(), "examples", "static-site"))

	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{ServerName: "site.example.test", RootCAs: pebble.Roots(t)},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, secure)
		},
	}}
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := client.Get("https://site.example.test/")
		if err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			issuer := res.TLS.PeerCertificates[0].Issuer.String()
			if res.StatusCode != 200 || !strings.Contains(string(b), "Hello from a static site") || !strings.Contains(issuer, "Pebble") {
				t.Fatalf("status %d, issuer %q, body %q; want the site over a Pebble certificate", res.StatusCode, issuer, tail(string(b), 200))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("https://site.example.test via %s: %v", secure, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(data, "acme")); err != nil {
		t.Errorf("the ACME cache is not in the data dir: %v", err)
	}
}
