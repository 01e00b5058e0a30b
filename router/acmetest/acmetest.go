// Package acmetest runs Let's Encrypt's Pebble ACME test server (and its DNS
// companion, which resolves every name to 127.0.0.1) for tests. Pebble is a
// tool dependency in go.mod, so it builds offline after `go mod download`.
package acmetest

import (
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
	"testing"
	"time"

	"github.com/strata-paas/strata/api/certtest"
)

// Pebble is a running ACME server.
type Pebble struct {
	// Directory is the ACME directory URL.
	Directory string
	// APICAFile is a PEM file of the root that verifies Pebble's own HTTPS
	// (what a client's --acme-ca-file needs); APIRoots the same as a pool.
	APICAFile string
	APIRoots  *x509.CertPool
	mgmt      string
}

// Start builds and starts Pebble, validating HTTP-01 challenges on
// 127.0.0.1:httpPort and TLS-ALPN-01 ones on 127.0.0.1:tlsPort, and waits
// until its directory answers. Everything stops with the test. Without the
// go command the test is skipped, or fails when CI or STRATA_REQUIRE is set.
func Start(t testing.TB, httpPort, tlsPort int) *Pebble {
	t.Helper()
	bin := build(t)
	dir := t.TempDir()
	own := certtest.New(t, certtest.Options{DNSNames: []string{"localhost"}})
	p := &Pebble{APICAFile: filepath.Join(dir, "cert.pem"), APIRoots: own.Pool()}
	must(t, os.WriteFile(p.APICAFile, []byte(own.CertPEM), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "key.pem"), []byte(own.KeyPEM), 0o600))
	apiPort, mgmtPort, dnsPort, dnsMgmtPort := freePort(t), freePort(t), freePort(t), freePort(t)
	cfg, _ := json.Marshal(map[string]any{"pebble": map[string]any{
		"listenAddress":                  fmt.Sprintf("127.0.0.1:%d", apiPort),
		"managementListenAddress":        fmt.Sprintf("127.0.0.1:%d", mgmtPort),
		"certificate":                    p.APICAFile,
		"privateKey":                     filepath.Join(dir, "key.pem"),
		"httpPort":                       httpPort,
		"tlsPort":                        tlsPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
	}})
	must(t, os.WriteFile(filepath.Join(dir, "pebble.json"), cfg, 0o600))
	start(t, nil, filepath.Join(bin, "pebble-challtestsrv"),
		"-dnsserver", fmt.Sprintf("127.0.0.1:%d", dnsPort), "-management", fmt.Sprintf("127.0.0.1:%d", dnsMgmtPort),
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")
	start(t, []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0"}, filepath.Join(bin, "pebble"),
		"-config", filepath.Join(dir, "pebble.json"), "-dnsserver", fmt.Sprintf("127.0.0.1:%d", dnsPort))

	p.Directory = fmt.Sprintf("https://localhost:%d/dir", apiPort)
	p.mgmt = fmt.Sprintf("https://localhost:%d", mgmtPort)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		res, err := p.client().Get(p.Directory)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble did not start: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *Pebble) client() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.APIRoots}}}
}

// Roots returns a pool with the root of the certificates Pebble issues
// (random per run).
func (p *Pebble) Roots(t testing.TB) *x509.CertPool {
	t.Helper()
	res, err := p.client().Get(p.mgmt + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	rootPEM, _ := io.ReadAll(res.Body)
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("pebble root: %q", rootPEM)
	}
	return roots
}

// build builds pebble and pebble-challtestsrv into a temp dir.
func build(t testing.TB) string {
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

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func start(t testing.TB, env []string, bin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logWriter{t}, logWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
}

type logWriter struct{ t testing.TB }

func (w logWriter) Write(b []byte) (int, error) {
	w.t.Logf("%s", b)
	return len(b), nil
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
