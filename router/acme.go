package router

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/router/registry"
)

// ACMEConfig configures automatic certificates from an ACME CA (Let's
// Encrypt, or any RFC 8555 server).
type ACMEConfig struct {
	Email        string // contact address given to the CA
	DirectoryURL string // default Let's Encrypt production
	CacheDir     string // issued certificates and the account key (required)
	// RootCAs verify the CA's own HTTPS (nil: the system roots).
	RootCAs *x509.CertPool
	// Routed reports whether a host has routes now; only such hosts get
	// certificates, so a client cannot make the router order certificates
	// for arbitrary SNI names.
	Routed func(host string) bool
}

// ACME issues and renews certificates for routed hosts with autocert.
// Challenges: HTTP-01 through HTTPHandler on the plain listener, and
// TLS-ALPN-01 through the CertStore it is the fallback of. Safe for
// concurrent use.
type ACME struct {
	m *autocert.Manager
}

// NewACME returns an ACME for cfg; EInvalid without a cache dir.
func NewACME(cfg ACMEConfig) (*ACME, error) {
	if cfg.CacheDir == "" {
		return nil, api.Errorf(api.EInvalid, "ACME needs a cache directory for certificates and the account key — pass --acme-cache DIR")
	}
	dir := cfg.DirectoryURL
	if dir == "" {
		dir = autocert.DefaultACMEDirectory
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	if cfg.RootCAs != nil {
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}}
	}
	routed := cfg.Routed
	return &ACME{m: &autocert.Manager{
		Prompt: autocert.AcceptTOS,
		Cache:  autocert.DirCache(cfg.CacheDir),
		Email:  cfg.Email,
		Client: &acme.Client{DirectoryURL: dir, HTTPClient: hc},
		HostPolicy: func(_ context.Context, host string) error {
			if routed == nil || !routed(registry.NormalizeHost(host)) {
				return api.Errorf(api.EForbidden, "no route for host %q: ACME certificates are only ordered for routed hosts", host)
			}
			return nil
		},
	}}, nil
}

// GetCertificate returns a certificate for the hello's name, ordering one
// when needed (set it as the CertStore's fallback).
func (a *ACME) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return a.m.GetCertificate(hello)
}

// HTTPHandler answers HTTP-01 challenges under /.well-known/acme-challenge/
// and passes every other request to next.
func (a *ACME) HTTPHandler(next http.Handler) http.Handler {
	if next == nil {
		next = http.NotFoundHandler()
	}
	return a.m.HTTPHandler(next)
}

// RoutedIn returns a Routed func answering from a registry's table: a host
// with any route, path routes included.
func RoutedIn(reg *registry.Registry) func(host string) bool {
	return func(host string) bool { return reg.Table().HasHost(host) }
}
