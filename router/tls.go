package router

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/router/registry"
)

// CertStore holds the TLS certificates the router serves, chosen per
// connection by SNI: an exact name of a certificate first, then a wildcard
// (*.example.com) one level up, then the default (the first loaded). Reload
// swaps the whole set atomically. Safe for concurrent use.
type CertStore struct {
	dir string
	set atomic.Pointer[certSet]
}

type certSet struct {
	byName map[string]*tls.Certificate // DNS names and "*.domain" wildcards, lowercased
	def    *tls.Certificate
}

// LoadCertDir loads every NAME.crt / NAME.key pair (PEM) in dir.
func LoadCertDir(dir string) (*CertStore, error) {
	s := &CertStore{dir: dir}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload reads the directory again and swaps in its certificates; on error
// the current set stays.
func (s *CertStore) Reload() error {
	crts, err := filepath.Glob(filepath.Join(s.dir, "*.crt"))
	if err != nil {
		return api.Errorf(api.EInvalid, "list certificates in %s: %v", s.dir, err)
	}
	set := &certSet{byName: map[string]*tls.Certificate{}}
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
		if set.def == nil {
			set.def = &c
		}
		names := c.Leaf.DNSNames
		if len(names) == 0 && c.Leaf.Subject.CommonName != "" {
			names = []string{c.Leaf.Subject.CommonName}
		}
		for _, n := range names {
			set.byName[strings.ToLower(n)] = &c
		}
	}
	if set.def == nil {
		if _, err := os.Stat(s.dir); err != nil {
			return api.Errorf(api.EInvalid, "certificate directory %s: %v", s.dir, err)
		}
		return api.Errorf(api.EInvalid, "no NAME.crt/NAME.key pairs in %s — add one per domain", s.dir)
	}
	s.set.Store(set)
	return nil
}

// GetCertificate is a tls.Config.GetCertificate choosing by SNI.
func (s *CertStore) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	set := s.set.Load()
	if set == nil {
		return nil, errors.New("no certificates loaded")
	}
	name := registry.NormalizeHost(hello.ServerName)
	if c := set.byName[name]; c != nil {
		return c, nil
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		if c := set.byName["*"+name[i:]]; c != nil {
			return c, nil
		}
	}
	return set.def, nil
}

// TLSConfig returns a server TLS configuration using the store, offering
// HTTP/2 and HTTP/1.1, TLS 1.2 at least.
func (s *CertStore) TLSConfig() *tls.Config {
	return &tls.Config{
		GetCertificate: s.GetCertificate,
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
	}
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
