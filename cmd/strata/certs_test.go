package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/certtest"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCerts(t *testing.T) {
	c := newCLI(t).asAdmin()
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
	_, errs, code := newCLI(t).asUser().run("certs")
	wantError(t, errs, code, 1, "admin")
}
