package client

import (
	"context"
	"io"
	"net/http"
	"net/url"

	"github.com/strata-paas/strata/api"
)

// GetBlob streams a blob (admin only); ENotFound if it is missing. The
// caller closes the reader.
func (c *Client) GetBlob(ctx context.Context, ref api.BlobRef) (io.ReadCloser, error) {
	if !ref.Valid() {
		return nil, api.Errorf(api.EInvalid, "blob ref %q is not valid — use sha256:<64 hex digits>", ref)
	}
	res, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/blobs/" + url.PathEscape(string(ref))})
	if err != nil {
		return nil, err
	}
	return res.Body, nil
}

// PutBlob uploads r as a blob (admin only) and returns its ref.
func (c *Client) PutBlob(ctx context.Context, r io.Reader) (api.BlobRef, error) {
	var out struct {
		Ref api.BlobRef `json:"ref"`
	}
	if err := c.call(ctx, request{method: http.MethodPost, path: "/v1/blobs", body: r, ctype: "application/octet-stream"}, &out); err != nil {
		return "", err
	}
	if !out.Ref.Valid() {
		return "", api.Errorf(api.EInternal, "the API answered an invalid blob ref %q", out.Ref)
	}
	return out.Ref, nil
}
