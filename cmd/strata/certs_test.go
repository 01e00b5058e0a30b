package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/certtest"
	"github.com/strata-paas/strata/api/controller"
	"github.com/strata-paas/strata/api/httpapi"
	"github.com/strata-paas/strata/api/httpapi/httpapitest"
	"github.com/strata-paas/strata/api/secretbox"
	"github.com/strata-paas/strata/api/store"
)

// newCertsCLI is a CLI against an API whose certificate service is real
// (SQLite store, sealed keys).
func newCertsCLI(t *testing.T) *cli {
	t.Helper()
	c := newCLI(t)
	st, err := store.Open(context.Background(), store.Config{Driver: store.DriverSQLite, DSN: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	box, _ := secretbox.New(bytes.Repeat([]byte{1}, secretbox.KeySize))
	svc := c.fake.Services()
	svc.Certificates = controller.NewCertificates(controller.CertificatesConfig{Store: st, Box: box, Logger: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Logger: slog.New(slog.DiscardHandler)}, svc).Handler())
	t.Cleanup(srv.Close)
	c.url = srv.URL
	return c
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCerts(t *testing.T) {
	c := newCertsCLI(t).loggedIn(httpapitest.AdminToken)
	dir := t.TempDir()
	www := certtest.New(t, certtest.Options{DNSNames: []string{"www.example.com", "example.com"}, NotAfter: time.Now().Add(40 * 24 * time.Hour)})
	other := certtest.New(t, certtest.Options{DNSNames: []string{"other.example.com"}})
	crt := writeFile(t, dir, "www.crt", www.CertPEM)
	key := writeFile(t, dir, "www.key", www.KeyPEM)
	otherKey := writeFile(t, dir, "other.key", other.KeyPEM)

	if out := c.mustRun("certs"); !strings.Contains(out, "No certificates") {
		t.Fatalf("empty list: %q", out)
	}
	out := c.mustRun("certs", "add", crt, key)
	if !strings.Contains(out, "Added certificate www.example.com for www.example.com, example.com") {
		t.Fatalf("add: %q", out)
	}
	out = c.mustRun("certs")
	if !strings.Contains(out, "www.example.com") || !strings.Contains(out, "www.example.com,example.com") || strings.Contains(out, "PRIVATE") {
		t.Fatalf("list: %q", out)
	}
	var list []api.Certificate
	if err := json.Unmarshal([]byte(c.mustRun("certs", "--json")), &list); err != nil || len(list) != 1 || list[0].Fingerprint == "" {
		t.Fatalf("certs --json: %v %+v", err, list)
	}

	errTests := []struct {
		name string
		args []string
		want string
	}{
		{"again", []string{"certs", "add", crt, key}, "--replace"},
		{"mismatched key", []string{"certs", "add", crt, otherKey}, "does not match"},
		{"swapped", []string{"certs", "add", key, crt}, "certificate first"},
		{"missing file", []string{"certs", "add", filepath.Join(dir, "nope.crt"), key}, "check the path"},
		{"remove unknown", []string{"certs", "remove", "nope.example.com"}, "strata certs"},
	}
	for _, tc := range errTests {
		t.Run(tc.name, func(t *testing.T) {
			_, errs, code := c.run(tc.args...)
			wantError(t, errs, code, 1, tc.want)
		})
	}
	c.mustRun("certs", "add", "--replace", crt, key)
	if out := c.mustRun("certs", "remove", "www.example.com"); !strings.Contains(out, "Removed certificate www.example.com") {
		t.Fatalf("remove: %q", out)
	}
	if out := c.mustRun("certs", "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("after remove: %q", out)
	}
	// Not an admin: forbidden, with what to do.
	_, errs, code := newCertsCLI(t).loggedIn(httpapitest.UserToken).run("certs")
	wantError(t, errs, code, 1, "admin")
}
