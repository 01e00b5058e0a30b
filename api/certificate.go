package api

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"strings"
	"time"
)

// Certificate is a TLS certificate uploaded through the API, as users see
// it: never with its private key. Name identifies it (by default its first
// DNS name, with a leading "*." written "wildcard.").
type Certificate struct {
	Name        string    `json:"name"`
	DNSNames    []string  `json:"dns_names"`
	Issuer      string    `json:"issuer"`
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
	Fingerprint string    `json:"fingerprint"` // SHA-256 of the leaf certificate (DER), hex
	CreatedAt   time.Time `json:"created_at"`
}

// CertificateUpload is the body of POST /v1/certificates: a PEM certificate
// chain (leaf first) and its PEM private key. Replace allows overwriting a
// certificate of the same name (a renewal).
type CertificateUpload struct {
	Name        string `json:"name,omitempty"`
	Certificate string `json:"certificate"`
	PrivateKey  string `json:"private_key"`
	Replace     bool   `json:"replace,omitempty"`
}

// CertificateKeyPair is a certificate with its chain and private key in PEM,
// as routers fetch them (admin only).
type CertificateKeyPair struct {
	Certificate
	ChainPEM      string `json:"certificate_pem"`
	PrivateKeyPEM string `json:"private_key_pem"`
}

// StoredCertificate is a certificate as persisted: its metadata, its PEM
// chain, and its private key sealed (encrypted) by the controller.
type StoredCertificate struct {
	Certificate
	ChainPEM  string
	SealedKey []byte
}

// CertificateService manages uploaded certificates. Every method needs an
// admin principal. Errors: EInvalid for a certificate or key that cannot be
// used (the message says why), EConflict for an existing name without
// Replace, ENotFound for an unknown name.
type CertificateService interface {
	AddCertificate(ctx context.Context, up CertificateUpload) (*Certificate, error)
	Certificates(ctx context.Context) ([]Certificate, error)
	RemoveCertificate(ctx context.Context, name string) error
	// CertificateKeyPairs returns every certificate with its private key,
	// for routers.
	CertificateKeyPairs(ctx context.Context) ([]CertificateKeyPair, error)
}

// Limits of certificate uploads.
const (
	MaxCertificatePEMBytes = 64 << 10
	MaxCertificateChain    = 10
)

// ParseCertificateUpload checks an uploaded chain and key and returns the
// certificate's metadata (Name filled from up.Name or the first DNS name).
// It returns EInvalid when the PEM does not parse, the key does not match
// the leaf, the leaf has no DNS names, or it is expired or not yet valid at
// now. Error messages never contain key material.
func ParseCertificateUpload(up CertificateUpload, now time.Time) (*Certificate, error) {
	const hint = " — send the PEM certificate chain (leaf first) and its PEM private key, e.g. strata certs add server.crt server.key"
	if len(up.Certificate) > MaxCertificatePEMBytes || len(up.PrivateKey) > MaxCertificatePEMBytes {
		return nil, Errorf(EInvalid, "the certificate or key is larger than %d bytes — upload only the chain and key", MaxCertificatePEMBytes)
	}
	if strings.TrimSpace(up.Certificate) == "" {
		return nil, Errorf(EInvalid, "the certificate is empty"+hint)
	}
	if strings.TrimSpace(up.PrivateKey) == "" {
		return nil, Errorf(EInvalid, "the private key is empty"+hint)
	}
	var chain []*x509.Certificate
	rest := []byte(up.Certificate)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			if strings.Contains(b.Type, "PRIVATE KEY") {
				return nil, Errorf(EInvalid, "the certificate file holds a private key — pass the certificate first and the key second")
			}
			return nil, Errorf(EInvalid, "the certificate file holds a PEM block of type %q, not CERTIFICATE"+hint, truncate(b.Type, 40))
		}
		if len(chain) == MaxCertificateChain {
			return nil, Errorf(EInvalid, "the certificate chain has more than %d certificates — upload the leaf and its intermediates only", MaxCertificateChain)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, Errorf(EInvalid, "certificate %d of the chain does not parse: %v"+hint, len(chain)+1, err)
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return nil, Errorf(EInvalid, "the certificate is not PEM (no \"-----BEGIN CERTIFICATE-----\" block)"+hint)
	}
	leaf := chain[0]
	if err := checkPrivateKey([]byte(up.PrivateKey), leaf); err != nil {
		return nil, err
	}
	if len(leaf.DNSNames) == 0 {
		return nil, Errorf(EInvalid, "the certificate has no DNS names (subjectAltName) — issue it for the domains it should serve")
	}
	names := make([]string, len(leaf.DNSNames))
	for i, n := range leaf.DNSNames {
		names[i] = strings.ToLower(strings.TrimSuffix(n, "."))
	}
	if now.After(leaf.NotAfter) {
		return nil, Errorf(EInvalid, "the certificate for %s expired on %s — renew it and upload the new one", names[0], leaf.NotAfter.UTC().Format(time.DateOnly))
	}
	if now.Before(leaf.NotBefore) {
		return nil, Errorf(EInvalid, "the certificate for %s is not valid before %s — check the clock of the machine that issued it, or wait", names[0], leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	name := up.Name
	if name == "" {
		name = CertificateName(names[0])
	}
	if err := ValidateCertificateName(name); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(leaf.Raw)
	return &Certificate{
		Name:        name,
		DNSNames:    names,
		Issuer:      leaf.Issuer.String(),
		NotBefore:   leaf.NotBefore.UTC(),
		NotAfter:    leaf.NotAfter.UTC(),
		Fingerprint: hex.EncodeToString(sum[:]),
	}, nil
}

// checkPrivateKey checks that keyPEM holds one PEM private key (PKCS#8,
// PKCS#1 or SEC 1) whose public half is the leaf's. Errors never repeat
// any of the input.
func checkPrivateKey(keyPEM []byte, leaf *x509.Certificate) error {
	const hint = " — upload the PEM private key the certificate was issued for"
	b, _ := pem.Decode(keyPEM)
	if b == nil {
		return Errorf(EInvalid, "the private key is not PEM (no \"-----BEGIN … PRIVATE KEY-----\" block)"+hint)
	}
	if b.Type == "CERTIFICATE" {
		return Errorf(EInvalid, "the key file holds a certificate — pass the certificate first and the key second")
	}
	if !strings.HasSuffix(b.Type, "PRIVATE KEY") {
		return Errorf(EInvalid, "the key file holds a PEM block of type %q, not a private key"+hint, truncate(b.Type, 40))
	}
	var key any
	var err error
	switch b.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(b.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	}
	if err != nil {
		return Errorf(EInvalid, "the private key does not parse as an RSA, ECDSA or Ed25519 key"+hint)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return Errorf(EInvalid, "the private key is of an unsupported type"+hint)
	}
	pub, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(signer.Public()) {
		return Errorf(EInvalid, "the private key does not match the certificate"+hint)
	}
	// The same check as the router's, so what is accepted here loads there.
	if _, err := tls.X509KeyPair(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}), keyPEM); err != nil {
		return Errorf(EInvalid, "the private key cannot be used for TLS with this certificate"+hint)
	}
	return nil
}

// CertificateName returns the default name of a certificate whose first DNS
// name is dnsName: the name itself, with a leading "*." written "wildcard.".
func CertificateName(dnsName string) string {
	if rest, ok := strings.CutPrefix(dnsName, "*."); ok {
		return "wildcard." + rest
	}
	return dnsName
}

// ValidateCertificateName checks a certificate name: 1 to 253 characters of
// lowercase letters, digits, '.', '-' and '_', starting with a letter or digit.
func ValidateCertificateName(name string) error {
	ok := len(name) > 0 && len(name) <= 253
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '.' || c == '-' || c == '_') && i > 0:
		default:
			ok = false
		}
	}
	if !ok {
		return Errorf(EInvalid, "certificate name %q is not valid — use lowercase letters, digits, '.', '-' and '_' (such as www.example.com)", truncate(name, 60))
	}
	return nil
}
