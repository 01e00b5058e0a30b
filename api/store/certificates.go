package store

import (
	"context"
	"encoding/json"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/strata-paas/strata/api"
)

// certificateRow mirrors the certificates table of 005_certificates.sql.
type certificateRow struct {
	Name        string `gorm:"primaryKey"`
	DNSNames    string `gorm:"column:dns_names"`
	Issuer      string
	NotBefore   time.Time
	NotAfter    time.Time
	Fingerprint string
	ChainPEM    string `gorm:"column:chain_pem"`
	SealedKey   []byte
	CreatedAt   time.Time
}

func (certificateRow) TableName() string { return "certificates" }

func (r certificateRow) api() (*api.StoredCertificate, error) {
	c := &api.StoredCertificate{
		Certificate: api.Certificate{
			Name: r.Name, Issuer: r.Issuer, NotBefore: norm(r.NotBefore), NotAfter: norm(r.NotAfter),
			Fingerprint: r.Fingerprint, CreatedAt: norm(r.CreatedAt),
		},
		ChainPEM:  r.ChainPEM,
		SealedKey: r.SealedKey,
	}
	return c, json.Unmarshal([]byte(r.DNSNames), &c.DNSNames)
}

// PutCertificate stores c (its private key already sealed by the caller) and
// fills c.CreatedAt. A certificate of the same name is replaced when replace
// is set; otherwise EConflict. EInvalid for an empty name or sealed key.
func (s *Store) PutCertificate(ctx context.Context, c *api.StoredCertificate, replace bool) error {
	if c.Name == "" || len(c.SealedKey) == 0 {
		return api.Errorf(api.EInvalid, "certificate name and sealed key must not be empty")
	}
	names, err := json.Marshal(c.DNSNames)
	if err != nil {
		return s.fail("put certificate", err, msgs{})
	}
	row := certificateRow{
		Name: c.Name, DNSNames: string(names), Issuer: c.Issuer, NotBefore: norm(c.NotBefore),
		NotAfter: norm(c.NotAfter), Fingerprint: c.Fingerprint, ChainPEM: c.ChainPEM,
		SealedKey: c.SealedKey, CreatedAt: s.stamp(c.CreatedAt),
	}
	db := s.write.WithContext(ctx)
	if replace {
		db = db.Clauses(clause.OnConflict{
			Columns: []clause.Column{{Name: "name"}},
			DoUpdates: clause.AssignmentColumns([]string{"dns_names", "issuer", "not_before", "not_after",
				"fingerprint", "chain_pem", "sealed_key", "created_at"}),
		})
	}
	if err := db.Create(&row).Error; err != nil {
		return s.fail("put certificate", err, msgs{
			conflict: "a certificate named " + q(c.Name) + " exists — remove it first, or upload with --replace to renew it",
		})
	}
	c.CreatedAt = row.CreatedAt
	return nil
}

// Certificates returns every stored certificate ordered by name, with its
// sealed key.
func (s *Store) Certificates(ctx context.Context) ([]*api.StoredCertificate, error) {
	var rows []certificateRow
	if err := s.read.WithContext(ctx).Order("name").Find(&rows).Error; err != nil {
		return nil, s.fail("list certificates", err, msgs{})
	}
	out := make([]*api.StoredCertificate, 0, len(rows))
	for _, r := range rows {
		c, err := r.api()
		if err != nil {
			return nil, s.fail("decode certificate "+q(r.Name), err, msgs{})
		}
		out = append(out, c)
	}
	return out, nil
}

// DeleteCertificate deletes the certificate of that name; ENotFound if
// there is none.
func (s *Store) DeleteCertificate(ctx context.Context, name string) error {
	res := s.write.WithContext(ctx).Where("name = ?", name).Delete(&certificateRow{})
	err := res.Error
	if err == nil && res.RowsAffected == 0 {
		err = gorm.ErrRecordNotFound
	}
	return s.fail("delete certificate", err, msgs{
		notFound: "no certificate named " + q(name) + " — run strata certs to list them",
	})
}
