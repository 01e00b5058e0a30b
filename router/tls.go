package router

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/router/registry"
)

// CertStore holds the TLS certificates the router serves, chosen per
// connection by SNI: an exact name of a certificate first, then a wildcard
// (*.example.com) one level up, then the fallback (ACME) when one is set,
// then the default (the first certificate of the directory, else the first
// uploaded one). Certificates come from two sources, combined: a directory
// of NAME.crt/NAME.key pairs (Reload) and certificates held in memory, such
// as those uploaded through the API (SetCertificates). For a name both cover,
// the in-memory certificate wins; among several in-memory certificates for
// one name, the one valid longest. Every change swaps the whole set
// atomically. Safe for concurrent use.
type CertStore struct {
	dir      string
	fallback func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	mu       sync.Mutex // serialises changes
	dirCerts []*tls.Certificate
	memCerts []*tls.Certificate
	set      atomic.Pointer[certSet]
}

type certSet struct {
	byName map[string]*tls.Certificate // DNS names and "*.domain" wildcards, lowercased
	def    *tls.Certificate
}

// NewCertStore returns an empty store without a directory: it serves what
// SetCertificates gives it (and the fallback).
func NewCertStore() *CertStore {
	s := &CertStore{}
	s.set.Store(&certSet{byName: map[string]*tls.Certificate{}})
	return s
}

// LoadCertDir loads every NAME.crt / NAME.key pair (PEM) in dir; it fails
// when there is none.
func LoadCertDir(dir string) (*CertStore, error) {
	s := &CertStore{dir: dir}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// SetFallback sets the source of certificates for names no held
// certificate covers (an ACME manager's GetCertificate). It also receives
// every TLS-ALPN-01 challenge handshake. Call it before serving.
func (s *CertStore) SetFallback(f func(*tls.ClientHelloInfo) (*tls.Certificate, error)) {
	s.fallback = f
}

// Reload reads the directory again and swaps in its certificates; on error
// the current set stays.
func (s *CertStore) Reload() error {
	crts, err := filepath.Glob(filepath.Join(s.dir, "*.crt"))
	if err != nil {
		return api.Errorf(api.EInvalid, "list certificates in %s: %v", s.dir, err)
	}
	var certs []*tls.Certificate
	for _, crt := range crts {
		key := strings.TrimSuffix(crt, ".crt") + ".key"
		c, err := tls.LoadX509KeyPair(crt, key)
		if err != nil {
			return api.Errorf(api.EInvalid, "load certificate %s with key %s: %v — each NAME.crt needs a matching NAME.key (PEM)", crt, key, err)
		}
		if c.Leaf == nil {
			if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
				return api.Errorf(api.EInvalid, "parse certificate %s: %v", crt, err)
			}
		}
		certs = append(certs, &c)
	}
	if len(certs) == 0 {
		if _, err := os.Stat(s.dir); err != nil {
			return api.Errorf(api.EInvalid, "certificate directory %s: %v", s.dir, err)
		}
		return api.Errorf(api.EInvalid, "no NAME.crt/NAME.key pairs in %s — add one per domain", s.dir)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dirCerts = certs
	s.rebuild()
	return nil
}

// SetCertificates replaces the in-memory certificates (each with its Leaf
// parsed, or parseable) and swaps in the new set.
func (s *CertStore) SetCertificates(certs []tls.Certificate) {
	mem := make([]*tls.Certificate, 0, len(certs))
	for i := range certs {
		c := certs[i]
		if c.Leaf == nil && len(c.Certificate) > 0 {
			c.Leaf, _ = x509.ParseCertificate(c.Certificate[0])
		}
		if c.Leaf != nil {
			mem = append(mem, &c)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.memCerts = mem
	s.rebuild()
}

// rebuild computes the set from both sources; s.mu is held.
func (s *CertStore) rebuild() {
	set := &certSet{byName: map[string]*tls.Certificate{}}
	for _, c := range s.dirCerts {
		for _, n := range certNames(c) {
			set.byName[n] = c
		}
	}
	fromMem := map[string]bool{}
	for _, c := range s.memCerts {
		for _, n := range certNames(c) {
			if old := set.byName[n]; fromMem[n] && old.Leaf.NotAfter.After(c.Leaf.NotAfter) {
				continue
			}
			set.byName[n] = c
			fromMem[n] = true
		}
	}
	switch {
	case len(s.dirCerts) > 0:
		set.def = s.dirCerts[0]
	case len(s.memCerts) > 0:
		set.def = s.memCerts[0]
	}
	s.set.Store(set)
}

func certNames(c *tls.Certificate) []string {
	names := c.Leaf.DNSNames
	if len(names) == 0 && c.Leaf.Subject.CommonName != "" {
		names = []string{c.Leaf.Subject.CommonName}
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.ToLower(strings.TrimSuffix(n, "."))
	}
	return out
}

// Covers reports whether a held certificate (not the default) serves name.
func (s *CertStore) Covers(name string) bool {
	return s.match(s.set.Load(), registry.NormalizeHost(name)) != nil
}

func (s *CertStore) match(set *certSet, name string) *tls.Certificate {
	if set == nil {
		return nil
	}
	if c := set.byName[name]; c != nil {
		return c
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		return set.byName["*"+name[i:]]
	}
	return nil
}

// GetCertificate is a tls.Config.GetCertificate choosing by SNI.
func (s *CertStore) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if s.fallback != nil && slices.Contains(hello.SupportedProtos, acmeTLSALPN) {
		return s.fallback(hello)
	}
	set := s.set.Load()
	if c := s.match(set, registry.NormalizeHost(hello.ServerName)); c != nil {
		return c, nil
	}
	var ferr error
	if s.fallback != nil && hello.ServerName != "" {
		c, err := s.fallback(hello)
		if err == nil {
			return c, nil
		}
		ferr = err
	}
	if set != nil && set.def != nil {
		return set.def, nil
	}
	if ferr != nil {
		return nil, ferr
	}
	return nil, errors.New("no certificates loaded")
}

// acmeTLSALPN is the ALPN protocol of ACME TLS-ALPN-01 challenges (RFC 8737).
const acmeTLSALPN = "acme-tls/1"

// TLSConfig returns a server TLS configuration using the store, offering
// HTTP/2 and HTTP/1.1, TLS 1.2 at least.
func (s *CertStore) TLSConfig() *tls.Config {
	return &tls.Config{
		GetCertificate: s.GetCertificate,
		MinVersion:     tls.VersionTLS12,
		NextProtos:     s.nextProtos(),
	}
}

func (s *CertStore) nextProtos() []string {
	if s.fallback != nil {
		return []string{"h2", "http/1.1", acmeTLSALPN}
	}
	return []string{"h2", "http/1.1"}
}

// RedirectToHTTPS answers every plain-HTTP request with a permanent
// redirect to the same URL over https (port httpsPort unless it is 443),
// except ACME HTTP-01 challenges, which go to next (nil: 404).
func RedirectToHTTPS(httpsPort string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
			if next != nil {
				next.ServeHTTP(w, r)
			} else {
				http.NotFound(w, r)
			}
			return
		}
		host := registry.NormalizeHost(r.Host)
		if host == "" || strings.ContainsAny(host, "/\\@") {
			http.Error(w, "400 Bad Request: the request has no usable Host header", http.StatusBadRequest)
			return
		}
		if strings.IndexByte(host, ':') >= 0 {
			host = "[" + host + "]"
		}
		if httpsPort != "" && httpsPort != "443" {
			host += ":" + httpsPort
		}
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
	})
}
