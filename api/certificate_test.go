package api_test

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/certtest"
)

// legacyKey returns p's key in its pre-PKCS#8 PEM form (SEC 1 or PKCS#1).
func legacyKey(t *testing.T, p *certtest.Pair) string {
	t.Helper()
	switch k := p.Key.(type) {
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	case *rsa.PrivateKey:
		return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
	}
	t.Fatalf("no legacy form for %T", p.Key)
	return ""
}

func TestParseCertificateUpload(t *testing.T) {
	now := time.Now()
	www := certtest.New(t, certtest.Options{DNSNames: []string{"WWW.Example.com", "example.com"}})
	wild := certtest.New(t, certtest.Options{DNSNames: []string{"*.apps.example.com"}, Key: "rsa"})
	ed := certtest.New(t, certtest.Options{DNSNames: []string{"ed.example.com"}, Key: "ed25519"})
	other := certtest.New(t, certtest.Options{DNSNames: []string{"www.example.com"}})
	expired := certtest.New(t, certtest.Options{DNSNames: []string{"old.example.com"}, NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
	future := certtest.New(t, certtest.Options{DNSNames: []string{"new.example.com"}, NotBefore: now.Add(time.Hour)})
	noNames := certtest.New(t, certtest.Options{})
	ca := certtest.New(t, certtest.Options{IsCA: true})
	leaf := certtest.New(t, certtest.Options{DNSNames: []string{"chain.example.com"}, CA: ca})

	tests := []struct {
		name     string
		up       api.CertificateUpload
		wantName string
		wantDNS  string
		wantErr  string // substring of the message; "" = accepted
	}{
		{"ecdsa pkcs8", api.CertificateUpload{Certificate: www.CertPEM, PrivateKey: www.KeyPEM}, "www.example.com", "www.example.com,example.com", ""},
		{"ecdsa sec1", api.CertificateUpload{Certificate: www.CertPEM, PrivateKey: legacyKey(t, www)}, "www.example.com", "www.example.com,example.com", ""},
		{"rsa pkcs1 wildcard", api.CertificateUpload{Certificate: wild.CertPEM, PrivateKey: legacyKey(t, wild)}, "wildcard.apps.example.com", "*.apps.example.com", ""},
		{"ed25519", api.CertificateUpload{Certificate: ed.CertPEM, PrivateKey: ed.KeyPEM}, "ed.example.com", "ed.example.com", ""},
		{"chain with intermediate", api.CertificateUpload{Certificate: leaf.CertPEM + ca.CertPEM, PrivateKey: leaf.KeyPEM}, "chain.example.com", "chain.example.com", ""},
		{"own name", api.CertificateUpload{Name: "main", Certificate: www.CertPEM, PrivateKey: www.KeyPEM}, "main", "www.example.com,example.com", ""},
		{"bad own name", api.CertificateUpload{Name: "Main Site", Certificate: www.CertPEM, PrivateKey: www.KeyPEM}, "", "", "certificate name"},
		{"empty cert", api.CertificateUpload{PrivateKey: www.KeyPEM}, "", "", "certificate is empty"},
		{"empty key", api.CertificateUpload{Certificate: www.CertPEM}, "", "", "private key is empty"},
		{"not pem", api.CertificateUpload{Certificate: "hello", PrivateKey: www.KeyPEM}, "", "", "not PEM"},
		{"swapped", api.CertificateUpload{Certificate: www.KeyPEM, PrivateKey: www.CertPEM}, "", "", "holds a private key"},
		{"key is a cert", api.CertificateUpload{Certificate: www.CertPEM, PrivateKey: www.CertPEM}, "", "", "holds a certificate"},
		{"key not pem", api.CertificateUpload{Certificate: www.CertPEM, PrivateKey: "secret-bytes"}, "", "", "not PEM"},
		{"garbage key", api.CertificateUpload{Certificate: www.CertPEM, PrivateKey: "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ5dGVz\n-----END PRIVATE KEY-----\n"}, "", "", "does not parse"},
		{"mismatched key", api.CertificateUpload{Certificate: www.CertPEM, PrivateKey: other.KeyPEM}, "", "", "does not match"},
		{"garbage cert", api.CertificateUpload{Certificate: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", PrivateKey: www.KeyPEM}, "", "", "does not parse"},
		{"expired", api.CertificateUpload{Certificate: expired.CertPEM, PrivateKey: expired.KeyPEM}, "", "", "expired"},
		{"not yet valid", api.CertificateUpload{Certificate: future.CertPEM, PrivateKey: future.KeyPEM}, "", "", "not valid before"},
		{"no dns names", api.CertificateUpload{Certificate: noNames.CertPEM, PrivateKey: noNames.KeyPEM}, "", "", "no DNS names"},
		{"too large", api.CertificateUpload{Certificate: strings.Repeat("a", api.MaxCertificatePEMBytes+1), PrivateKey: www.KeyPEM}, "", "", "larger than"},
		{"too long chain", api.CertificateUpload{Certificate: strings.Repeat(www.CertPEM, api.MaxCertificateChain+1), PrivateKey: www.KeyPEM}, "", "", "more than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := api.ParseCertificateUpload(tc.up, now)
			if tc.wantErr != "" {
				if api.ErrorCode(err) != api.EInvalid || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an invalid error containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "c2VjcmV0") || strings.Contains(err.Error(), "secret-bytes") {
					t.Fatalf("error repeats key material: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v, want accepted", err)
			}
			if got.Name != tc.wantName || strings.Join(got.DNSNames, ",") != tc.wantDNS {
				t.Fatalf("got name %q names %v, want %q %s", got.Name, got.DNSNames, tc.wantName, tc.wantDNS)
			}
			if len(got.Fingerprint) != 64 || got.NotAfter.Before(now) {
				t.Fatalf("got fingerprint %q not after %v", got.Fingerprint, got.NotAfter)
			}
		})
	}
}

func FuzzParseCertificateUpload(f *testing.F) {
	p := certtest.New(f, certtest.Options{DNSNames: []string{"www.example.com"}})
	f.Add(p.CertPEM, p.KeyPEM)
	f.Add(p.KeyPEM, p.CertPEM)
	f.Add("-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----\n", "")
	f.Add(p.CertPEM+"-----BEGIN X-----\nAA==\n-----END X-----\n", p.KeyPEM)
	// marker stands for secret key bytes: no error may repeat it.
	const marker = "\nU0VDUkVUS0VZQllURVM=\n"
	f.Fuzz(func(t *testing.T, cert, key string) {
		got, err := api.ParseCertificateUpload(api.CertificateUpload{Certificate: cert, PrivateKey: key + marker}, time.Now())
		if err != nil {
			if api.ErrorCode(err) != api.EInvalid {
				t.Fatalf("code %q for %v", api.ErrorCode(err), err)
			}
			if strings.Contains(err.Error(), "U0VDUkVUS0VZQllURVM") {
				t.Fatalf("error repeats the key: %v", err)
			}
			return
		}
		if len(got.DNSNames) == 0 || api.ValidateCertificateName(got.Name) != nil {
			t.Fatalf("accepted %+v", got)
		}
	})
}
