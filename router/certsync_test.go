package router_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/certtest"
	"github.com/strata-paas/strata/router"
)

// serveStore serves TLS with store on 127.0.0.1:0 (answering every
// request with 204) and returns the address.
func serveStore(t *testing.T, store *router.CertStore) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- router.NewServer(router.Config{}, nil, testLogger(t)).ServeTLS(ctx, ln, store.TLSConfig())
	}()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

// served handshakes with addr for name and returns the serial of the
// certificate served ("" when the handshake fails).
func served(t *testing.T, addr, name string) string {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{ServerName: name, InsecureSkipVerify: true})
	if err != nil {
		return ""
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

func pair(p *certtest.Pair) api.CertificateKeyPair {
	return api.CertificateKeyPair{Certificate: api.Certificate{Name: p.Cert.DNSNames[0]}, ChainPEM: p.CertPEM, PrivateKeyPEM: p.KeyPEM}
}

func TestCertStoreCombinesDirectoryAndMemory(t *testing.T) {
	now := time.Now()
	dir := t.TempDir()
	dirA := certtest.New(t, certtest.Options{DNSNames: []string{"a.example.com", "both.example.com"}})
	os.WriteFile(filepath.Join(dir, "a.crt"), []byte(dirA.CertPEM), 0o600)
	os.WriteFile(filepath.Join(dir, "a.key"), []byte(dirA.KeyPEM), 0o600)
	store, err := router.LoadCertDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	memBoth := certtest.New(t, certtest.Options{DNSNames: []string{"both.example.com"}})
	memWild := certtest.New(t, certtest.Options{DNSNames: []string{"*.apps.example.com"}})
	shortLived := certtest.New(t, certtest.Options{DNSNames: []string{"x.apps.example.com"}, NotAfter: now.Add(2 * time.Hour)})
	longLived := certtest.New(t, certtest.Options{DNSNames: []string{"x.apps.example.com"}, NotAfter: now.Add(90 * 24 * time.Hour)})
	var certs []tls.Certificate
	for _, p := range []*certtest.Pair{memBoth, memWild, longLived, shortLived} {
		c, err := tls.X509KeyPair([]byte(p.CertPEM), []byte(p.KeyPEM))
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	store.SetCertificates(certs)
	addr := serveStore(t, store)
	serial := func(p *certtest.Pair) string { return p.Cert.SerialNumber.String() }
	tests := []struct {
		sni  string
		want string
	}{
		{"a.example.com", serial(dirA)},           // directory only
		{"BOTH.example.com", serial(memBoth)},     // memory wins over the directory
		{"y.apps.example.com", serial(memWild)},   // wildcard
		{"x.apps.example.com", serial(longLived)}, // exact beats wildcard; longest validity wins
		{"unknown.example.org", serial(dirA)},     // default: the directory's first
	}
	for _, tc := range tests {
		t.Run(tc.sni, func(t *testing.T) {
			if got := served(t, addr, tc.sni); got != tc.want {
				t.Fatalf("served serial %s, want %s", got, tc.want)
			}
		})
	}
	if !store.Covers("y.apps.example.com") || store.Covers("unknown.example.org") {
		t.Fatal("Covers disagrees with the served certificates")
	}
}

func TestCertSync(t *testing.T) {
	one := certtest.New(t, certtest.Options{DNSNames: []string{"one.example.com"}})
	two := certtest.New(t, certtest.Options{DNSNames: []string{"two.example.com"}})
	var mu sync.Mutex
	current := []api.CertificateKeyPair{pair(one), {Certificate: api.Certificate{Name: "broken"}, ChainPEM: "x", PrivateKeyPEM: "y"}}
	fail := true // the first fetch fails: the controller is not up yet
	store := router.NewCertStore()
	addr := serveStore(t, store)
	if got := served(t, addr, "one.example.com"); got != "" {
		t.Fatalf("an empty store served %s", got)
	}
	synced := make(chan int, 10)
	sync := &router.CertSync{
		Fetch: func(ctx context.Context) ([]api.CertificateKeyPair, error) {
			mu.Lock()
			defer mu.Unlock()
			if fail {
				fail = false
				return nil, api.Errorf(api.EUnavailable, "controller down")
			}
			return append([]api.CertificateKeyPair(nil), current...), nil
		},
		Store:      store,
		Interval:   time.Hour, // only notices and retries move it in this test
		RetryDelay: time.Millisecond,
		Logger:     testLogger(t),
		Synced:     func(n int) { synced <- n },
	}
	notify := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { sync.Run(ctx, notify); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	wait := func(want int) {
		t.Helper()
		select {
		case n := <-synced:
			if n != want {
				t.Fatalf("synced %d certificates, want %d", n, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no sync")
		}
	}
	wait(1) // after the retry; the broken pair is left out
	if got := served(t, addr, "one.example.com"); got != one.Cert.SerialNumber.String() {
		t.Fatalf("after the first sync: served %q", got)
	}
	mu.Lock()
	current = []api.CertificateKeyPair{pair(two)}
	mu.Unlock()
	notify <- struct{}{}
	wait(1)
	if got := served(t, addr, "two.example.com"); got != two.Cert.SerialNumber.String() {
		t.Fatalf("after the notice: served %q for two", got)
	}
	if got := served(t, addr, "one.example.com"); got != two.Cert.SerialNumber.String() {
		t.Fatalf("after removal: served %q for one, want the default (two)", got)
	}
	if err := sync.Sync(context.Background()); err != nil || errors.Is(err, context.Canceled) {
		t.Fatalf("Sync: %v", err)
	}
}
