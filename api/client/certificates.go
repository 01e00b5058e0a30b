package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/strata-paas/strata/api"
)

// Certificates lists the uploaded TLS certificates, without keys (admin).
func (c *Client) Certificates(ctx context.Context) ([]api.Certificate, error) {
	return list[api.Certificate](ctx, c, "/v1/certificates")
}

// AddCertificate uploads a PEM certificate chain and private key (admin).
func (c *Client) AddCertificate(ctx context.Context, up api.CertificateUpload) (*api.Certificate, error) {
	var out api.Certificate
	if err := c.send(ctx, http.MethodPost, "/v1/certificates", up, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RemoveCertificate deletes an uploaded certificate by name (admin).
func (c *Client) RemoveCertificate(ctx context.Context, name string) error {
	return c.send(ctx, http.MethodDelete, "/v1/certificates/"+url.PathEscape(name), nil, nil)
}

// RouterCertificates returns every uploaded certificate with its private
// key, as routers need them (admin).
func (c *Client) RouterCertificates(ctx context.Context) ([]api.CertificateKeyPair, error) {
	var p page[api.CertificateKeyPair]
	if err := c.getJSON(ctx, "/v1/router/certificates", &p); err != nil {
		return nil, err
	}
	return p.Items, nil
}
