package router

import (
	"context"
	"crypto/tls"
	"log/slog"
	"time"

	"github.com/strata-paas/strata/api"
)

// CertSync keeps a CertStore's in-memory certificates equal to the ones
// uploaded through the API: it fetches the whole set at start, whenever
// Run's notify channel fires (the controller's change notice on the bus),
// and every Interval as a safety net against lost notices. A fetch that
// fails keeps the current certificates and is retried after RetryDelay.
type CertSync struct {
	// Fetch returns every certificate with its key (the API's
	// /v1/router/certificates).
	Fetch      func(ctx context.Context) ([]api.CertificateKeyPair, error)
	Store      *CertStore
	Interval   time.Duration // default 1 minute
	RetryDelay time.Duration // default 5 seconds
	Logger     *slog.Logger
	// Synced, when set, is called after each successful swap with the
	// number of certificates in use (tests wait on it).
	Synced func(n int)
}

// Run syncs until ctx ends.
func (c *CertSync) Run(ctx context.Context, notify <-chan struct{}) {
	interval, retry := c.Interval, c.RetryDelay
	if interval <= 0 {
		interval = time.Minute
	}
	if retry <= 0 {
		retry = 5 * time.Second
	}
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-notify:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		case <-t.C:
		}
		next := interval
		if err := c.Sync(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("router.certificates_fetch_failed", "err", err, "retry_in", retry)
			next = retry
		}
		t.Reset(next)
	}
}

// Sync fetches the certificates once and swaps them in. Pairs that do not
// load are left out and logged by name (never with key material).
func (c *CertSync) Sync(ctx context.Context) error {
	pairs, err := c.Fetch(ctx)
	if err != nil {
		return err
	}
	certs := make([]tls.Certificate, 0, len(pairs))
	for _, p := range pairs {
		tc, err := tls.X509KeyPair([]byte(p.ChainPEM), []byte(p.PrivateKeyPEM))
		if err != nil {
			if c.Logger != nil {
				c.Logger.Error("router.certificate_unusable", "name", p.Name)
			}
			continue
		}
		certs = append(certs, tc)
	}
	c.Store.SetCertificates(certs)
	if c.Synced != nil {
		c.Synced(len(certs))
	}
	return nil
}
