package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/strata-paas/strata/api"
)

// certificateRoutes mounts the certificate endpoints (all admin; only
// /v1/router/certificates answers private keys). openapi.json describes them.
func (s *Server) certificateRoutes(authed, admin *echo.Group) {
	admin.GET("/certificates", s.listCertificates)
	admin.POST("/certificates", s.addCertificate, s.idempotent)
	admin.DELETE("/certificates/:name", s.removeCertificate, s.idempotent)
	// Routers read them with their own credential (the controller checks it).
	authed.GET("/router/certificates", s.routerCertificates)
}

func (s *Server) listCertificates(c echo.Context) error {
	certs, err := s.svc.Certificates.Certificates(ctxOf(c))
	if err != nil {
		return err
	}
	p, err := paginate(c, certs, func(c api.Certificate) string { return c.Name })
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

func (s *Server) addCertificate(c echo.Context) error {
	body, err := readLimited(c.Request().Body, 4*api.MaxCertificatePEMBytes, "request body")
	if err != nil {
		return err
	}
	var up api.CertificateUpload
	// The body holds a private key: the decoder's message is not repeated.
	if err := json.Unmarshal(body, &up); err != nil {
		return api.Errorf(api.EInvalid, `request body is not valid JSON — send {"certificate":"<PEM chain>","private_key":"<PEM key>"}`)
	}
	cert, err := s.svc.Certificates.AddCertificate(ctxOf(c), up)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, cert)
}

func (s *Server) removeCertificate(c echo.Context) error {
	name := c.Param("name")
	if err := api.ValidateCertificateName(name); err != nil {
		return err
	}
	if err := s.svc.Certificates.RemoveCertificate(ctxOf(c), name); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) routerCertificates(c echo.Context) error {
	pairs, err := s.svc.Certificates.CertificateKeyPairs(ctxOf(c))
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, page[api.CertificateKeyPair]{Items: pairs})
}
