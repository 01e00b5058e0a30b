package controller

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/secretbox"
)

// CertificateStore persists uploaded certificates; *store.Store implements
// it (the conformance suite in api/store/storetest checks it).
type CertificateStore interface {
	// PutCertificate stores c (key already sealed) and fills c.CreatedAt;
	// EConflict for an existing name unless replace.
	PutCertificate(ctx context.Context, c *api.StoredCertificate, replace bool) error
	// Certificates returns every certificate ordered by name.
	Certificates(ctx context.Context) ([]*api.StoredCertificate, error)
	// DeleteCertificate deletes one; ENotFound if absent.
	DeleteCertificate(ctx context.Context, name string) error
}

// Publisher publishes a message on the bus; *bus.Conn implements it.
type Publisher interface {
	Publish(subject string, v any) error
}

// CertificatesConfig wires a Certificates service.
type CertificatesConfig struct {
	Store CertificateStore
	// Box seals private keys before they are stored and opens them for
	// routers.
	Box *secretbox.Box
	// Bus gets a CertificatesChanged after every change (nil: none).
	Bus Publisher
	// Events records each change as a platform event, listed by strata
	// events --platform (nil: none).
	Events interface {
		AddEvent(ctx context.Context, e *api.Event) error
	}
	Logger *slog.Logger
	Now    func() time.Time // default time.Now
}

// Certificates is the api.CertificateService: it validates uploads, seals
// private keys at rest and tells routers about changes. Every method needs
// an admin principal in ctx (EForbidden otherwise). Safe for concurrent use.
type Certificates struct {
	cfg CertificatesConfig
}

var _ api.CertificateService = (*Certificates)(nil)

// NewCertificates returns the service for cfg; Store and Box are required.
func NewCertificates(cfg CertificatesConfig) *Certificates {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Certificates{cfg: cfg}
}

// AddCertificate validates and stores an upload (see
// api.ParseCertificateUpload), then notifies routers.
func (s *Certificates) AddCertificate(ctx context.Context, up api.CertificateUpload) (*api.Certificate, error) {
	if err := requireAdmin(ctx, "managing certificates"); err != nil {
		return nil, err
	}
	meta, err := api.ParseCertificateUpload(up, s.cfg.Now())
	if err != nil {
		return nil, err
	}
	sealed, err := s.cfg.Box.Seal([]byte(up.PrivateKey), []byte(meta.Name))
	if err != nil {
		return nil, err
	}
	sc := &api.StoredCertificate{Certificate: *meta, ChainPEM: up.Certificate, SealedKey: sealed}
	if err := s.cfg.Store.PutCertificate(ctx, sc, up.Replace); err != nil {
		return nil, err
	}
	s.cfg.Logger.Info("certificate.added", "name", sc.Name, "dns_names", sc.DNSNames,
		"not_after", sc.NotAfter, "fingerprint", sc.Fingerprint, "replace", up.Replace)
	s.record(ctx, "certificate.add", fmt.Sprintf("added certificate %s for %s (fingerprint %s)", sc.Name, strings.Join(sc.DNSNames, ", "), sc.Fingerprint))
	s.changed(sc.Name)
	return &sc.Certificate, nil
}

// Certificates lists the certificates without their keys, ordered by name.
func (s *Certificates) Certificates(ctx context.Context) ([]api.Certificate, error) {
	if err := requireAdmin(ctx, "managing certificates"); err != nil {
		return nil, err
	}
	scs, err := s.cfg.Store.Certificates(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.Certificate, len(scs))
	for i, sc := range scs {
		out[i] = sc.Certificate
	}
	return out, nil
}

// RemoveCertificate deletes a certificate and notifies routers.
func (s *Certificates) RemoveCertificate(ctx context.Context, name string) error {
	if err := requireAdmin(ctx, "managing certificates"); err != nil {
		return err
	}
	if err := api.ValidateCertificateName(name); err != nil {
		return err
	}
	if err := s.cfg.Store.DeleteCertificate(ctx, name); err != nil {
		return err
	}
	s.cfg.Logger.Info("certificate.removed", "name", name)
	s.record(ctx, "certificate.delete", "deleted certificate "+name)
	s.changed(name)
	return nil
}

// CertificateKeyPairs returns every certificate with its opened private
// key, for routers. A key that cannot be opened (the secret key file was
// replaced) is left out and logged by name.
func (s *Certificates) CertificateKeyPairs(ctx context.Context) ([]api.CertificateKeyPair, error) {
	if err := requireComponent(ctx, "reading the routers' certificates", api.ComponentRouter); err != nil {
		return nil, err
	}
	scs, err := s.cfg.Store.Certificates(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.CertificateKeyPair, 0, len(scs))
	for _, sc := range scs {
		key, err := s.cfg.Box.Open(sc.SealedKey, []byte(sc.Name))
		if err != nil {
			s.cfg.Logger.Error("certificate.key_unreadable", "name", sc.Name, "err", err)
			continue
		}
		out = append(out, api.CertificateKeyPair{Certificate: sc.Certificate, ChainPEM: sc.ChainPEM, PrivateKeyPEM: string(key)})
	}
	return out, nil
}

// record adds a platform event of a change; the change stands if it fails.
func (s *Certificates) record(ctx context.Context, typ, msg string) {
	if s.cfg.Events == nil {
		return
	}
	e := &api.Event{ID: uuid.NewString(), Type: typ, Actor: api.ActorName(ctx), Message: msg, Time: s.cfg.Now()}
	if err := s.cfg.Events.AddEvent(ctx, e); err != nil {
		s.cfg.Logger.Warn("controller.event_failed", "type", typ, "err", err)
	}
}

func (s *Certificates) changed(name string) {
	if s.cfg.Bus == nil {
		return
	}
	msg := api.CertificatesChanged{Version: api.MessageVersion, Name: name, Time: s.cfg.Now()}
	if err := s.cfg.Bus.Publish(api.SubjectCertificatesChanged, msg); err != nil {
		// Routers refresh periodically too; a lost notice only delays.
		s.cfg.Logger.Warn("certificate.notify_failed", "name", name, "err", err)
	}
}
