package httpapi

import (
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/strata-paas/strata/api"
)

// blobRefBody is the answer of POST /v1/blobs.
type blobRefBody struct {
	Ref api.BlobRef `json:"ref"`
}

func (s *Server) getBlob(c echo.Context) error {
	ref := api.BlobRef(c.Param("ref"))
	if !ref.Valid() {
		return api.Errorf(api.EInvalid, "blob ref %q is not valid — use sha256:<64 hex digits>", c.Param("ref"))
	}
	rc, err := s.svc.Blobs.Get(ctxOf(c), ref)
	if err != nil {
		return err
	}
	defer rc.Close()
	res := c.Response()
	res.Header().Set(echo.HeaderContentType, "application/octet-stream")
	res.Header().Set("ETag", `"`+string(ref)+`"`)
	res.WriteHeader(http.StatusOK)
	if _, err := io.Copy(res, rc); err != nil {
		s.log.Warn("http.blob_copy", "ref", ref, "err", err)
	}
	return nil
}

func (s *Server) putBlob(c echo.Context) error {
	up := newLimitedUpload(c, s.cfg.MaxBlobBytes, "raise the controller's blob limit")
	if c.Request().ContentLength > s.cfg.MaxBlobBytes {
		return up.tooLarge()
	}
	ref, err := s.svc.Blobs.Put(ctxOf(c), up)
	if up.exceeded {
		return up.tooLarge()
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, blobRefBody{Ref: ref})
}
