package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/certtest"
	"github.com/strata-paas/strata/api/client"
	"github.com/strata-paas/strata/api/httpapi/httpapitest"
)

// changes records the notifications the service publishes.
type changes struct{ subjects []string }

func (c *changes) Publish(subject string, v any) error {
	b, _ := json.Marshal(v)
	c.subjects = append(c.subjects, subject+" "+string(b))
	return nil
}

// lockedBuffer is a bytes.Buffer the services' goroutines may write to.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newCertServer serves the real API (the certificate service on the Env's
// SQLite store) logging to logs; it returns the Env and the certificate
// notifications.
func newCertServer(t *testing.T, logs *lockedBuffer) (*httpapitest.Env, *changes) {
	t.Helper()
	ch := &changes{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return httpapitest.Start(t, httpapitest.Options{Logger: log, CertificatesBus: ch}), ch
}

func TestCertificatesRoundTrip(t *testing.T) {
	ctx := context.Background()
	var logs lockedBuffer
	e, ch := newCertServer(t, &logs)
	url, st := e.URL, e.Store
	admin := client.New(url, e.AdminToken)
	user := client.New(url, e.UserToken)
	www := certtest.New(t, certtest.Options{DNSNames: []string{"www.example.com"}})
	renewed := certtest.New(t, certtest.Options{DNSNames: []string{"www.example.com", "example.com"}})
	wild := certtest.New(t, certtest.Options{DNSNames: []string{"*.apps.example.com"}})

	got, err := admin.AddCertificate(ctx, api.CertificateUpload{Certificate: www.CertPEM, PrivateKey: www.KeyPEM})
	if err != nil {
		t.Fatalf("AddCertificate: %v", err)
	}
	if got.Name != "www.example.com" || got.Fingerprint == "" {
		t.Fatalf("AddCertificate = %+v", got)
	}
	if _, err := admin.AddCertificate(ctx, api.CertificateUpload{Certificate: wild.CertPEM, PrivateKey: wild.KeyPEM}); err != nil {
		t.Fatalf("AddCertificate wildcard: %v", err)
	}

	errTests := []struct {
		name string
		call func() error
		want string
	}{
		{"same name", func() error {
			_, err := admin.AddCertificate(ctx, api.CertificateUpload{Certificate: renewed.CertPEM, PrivateKey: renewed.KeyPEM})
			return err
		}, api.EConflict},
		{"mismatched key", func() error {
			_, err := admin.AddCertificate(ctx, api.CertificateUpload{Certificate: www.CertPEM, PrivateKey: wild.KeyPEM})
			return err
		}, api.EInvalid},
		{"user adds", func() error {
			_, err := user.AddCertificate(ctx, api.CertificateUpload{Certificate: www.CertPEM, PrivateKey: www.KeyPEM})
			return err
		}, api.EForbidden},
		{"user lists", func() error { _, err := user.Certificates(ctx); return err }, api.EForbidden},
		{"user fetches keys", func() error { _, err := user.RouterCertificates(ctx); return err }, api.EForbidden},
		{"user removes", func() error { return user.RemoveCertificate(ctx, "www.example.com") }, api.EForbidden},
		{"remove unknown", func() error { return admin.RemoveCertificate(ctx, "nope.example.com") }, api.ENotFound},
		{"remove bad name", func() error { return admin.RemoveCertificate(ctx, "UPPER CASE") }, api.EInvalid},
	}
	for _, tc := range errTests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); code(err) != tc.want {
				t.Fatalf("got %v (code %q), want code %q", err, code(err), tc.want)
			}
		})
	}

	// Renewal replaces; the list shows the new SANs and fingerprint.
	if _, err := admin.AddCertificate(ctx, api.CertificateUpload{Certificate: renewed.CertPEM, PrivateKey: renewed.KeyPEM, Replace: true, Name: "www.example.com"}); err != nil {
		t.Fatalf("replace: %v", err)
	}
	list, err := admin.Certificates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "wildcard.apps.example.com" || list[1].Name != "www.example.com" || len(list[1].DNSNames) != 2 {
		t.Fatalf("Certificates = %+v", list)
	}

	pairs, err := admin.RouterCertificates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pairs) != 2 || pairs[1].PrivateKeyPEM != renewed.KeyPEM || pairs[1].ChainPEM != renewed.CertPEM {
		t.Fatalf("RouterCertificates did not return the renewed pair: %d pairs", len(pairs))
	}

	// At rest the key is sealed, never plaintext.
	stored, err := st.Certificates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range stored {
		if bytes.Contains(sc.SealedKey, []byte("PRIVATE KEY")) {
			t.Fatalf("certificate %s: key stored in plaintext", sc.Name)
		}
	}

	if err := admin.RemoveCertificate(ctx, "wildcard.apps.example.com"); err != nil {
		t.Fatal(err)
	}
	if list, _ := admin.Certificates(ctx); len(list) != 1 {
		t.Fatalf("after remove: %+v", list)
	}
	// add, add, replace, remove: four notices, none carrying a key.
	if len(ch.subjects) != 4 {
		t.Fatalf("notifications: %q, want 4", ch.subjects)
	}
	for _, s := range ch.subjects {
		if !strings.HasPrefix(s, api.SubjectCertificatesChanged+" ") || strings.Contains(s, "PRIVATE") {
			t.Fatalf("notification %q", s)
		}
	}
	// Each change is a platform event (of no org), newest first, with no key.
	evs, err := st.OrgEvents(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	var certEvs []*api.Event
	for _, e := range evs {
		if strings.HasPrefix(e.Type, "certificate.") {
			types = append(types, e.Type)
			certEvs = append(certEvs, e)
		}
	}
	evs = certEvs
	if strings.Join(types, " ") != "certificate.delete certificate.add certificate.add certificate.add" ||
		!strings.Contains(evs[0].Message, "wildcard.apps.example.com") || evs[0].Actor == "" {
		t.Fatalf("platform events: %v", types)
	}
	for _, p := range []*certtest.Pair{www, renewed, wild} {
		body := strings.Split(p.KeyPEM, "\n")[1]
		if strings.Contains(logs.String(), body) {
			t.Fatal("a private key appears in the logs")
		}
		for _, e := range evs {
			if strings.Contains(e.Message, body) {
				t.Fatal("a private key appears in an event")
			}
		}
	}
}

func TestCertificateListHasNoKeys(t *testing.T) {
	var logs lockedBuffer
	e, _ := newCertServer(t, &logs)
	url := e.URL
	p := certtest.New(t, certtest.Options{DNSNames: []string{"a.example.com"}})
	admin := client.New(url, e.AdminToken)
	if _, err := admin.AddCertificate(context.Background(), api.CertificateUpload{Certificate: p.CertPEM, PrivateKey: p.KeyPEM}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path      string
		wantKey   bool
		wantCache string
	}{
		{"/v1/certificates", false, ""},
		{"/v1/router/certificates", true, "no-store"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			res, b := adminDo(t, e.AdminToken, "GET", url+tc.path, "")
			if res.StatusCode != 200 {
				t.Fatalf("status %d: %s", res.StatusCode, b.String())
			}
			if got := strings.Contains(b.String(), "PRIVATE KEY"); got != tc.wantKey {
				t.Fatalf("answer contains a private key: %v, want %v", got, tc.wantKey)
			}
			if got := res.Header.Get("Cache-Control"); got != tc.wantCache {
				t.Fatalf("Cache-Control %q, want %q", got, tc.wantCache)
			}
		})
	}
	// A body that is not JSON is refused without echoing it.
	res, b := adminDo(t, e.AdminToken, "POST", url+"/v1/certificates", `{"private_key":"SECRETKEY`)
	if res.StatusCode != 400 || strings.Contains(b.String(), "SECRETKEY") {
		t.Fatalf("bad JSON: %d %s", res.StatusCode, b.String())
	}
}

// adminDo sends a raw request with token and reads the answer.
func adminDo(t *testing.T, token, method, url, body string) (*http.Response, *bytes.Buffer) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(res.Body)
	return res, &b
}
