package main

import (
	"crypto/x509"
	"flag"
	"fmt"
	"os"

	"github.com/strata-paas/strata/router"
	"github.com/strata-paas/strata/router/registry"
)

// acmeFlags are the flags that turn on automatic certificates (ACME) for
// routed hosts; `stratad router` and `stratad microcloud` both take them.
type acmeFlags struct {
	email, directory, cache, caFile *string
}

func addACMEFlags(fs *flag.FlagSet, httpsFlag string) *acmeFlags {
	return &acmeFlags{
		email:     fs.String("acme-email", "", "ACME: contact e-mail; turns on automatic certificates for routed hosts (needs "+httpsFlag+")"),
		directory: fs.String("acme-directory", "", "ACME: directory URL of the CA (default Let's Encrypt)"),
		cache:     fs.String("acme-cache", "", "ACME: directory keeping the account key and issued certificates"),
		caFile:    fs.String("acme-ca-file", "", "ACME: PEM file of roots that verify the CA's HTTPS (default: the system's)"),
	}
}

// enabled reports whether any ACME flag was given.
func (a *acmeFlags) enabled() bool { return *a.email != "" || *a.directory != "" || *a.cache != "" }

// build returns the ACME certificate source for the hosts routed in reg;
// defaultCache is used when --acme-cache is not given ("" = required).
func (a *acmeFlags) build(reg *registry.Registry, defaultCache string) (*router.ACME, error) {
	cache := *a.cache
	if cache == "" {
		cache = defaultCache
	}
	cfg := router.ACMEConfig{Email: *a.email, DirectoryURL: *a.directory, CacheDir: cache, Routed: router.RoutedIn(reg)}
	if *a.caFile != "" {
		pemBytes, err := os.ReadFile(*a.caFile)
		if err != nil {
			return nil, fmt.Errorf("read --acme-ca-file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("--acme-ca-file %s holds no PEM certificate — pass the CA's root in PEM", *a.caFile)
		}
	}
	return router.NewACME(cfg)
}
