package httpapi

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/strata-paas/strata/api"
)

// statusOf maps an api error code to its HTTP status. This is the one place
// the mapping lives on the server side.
func statusOf(code string) int {
	switch code {
	case api.EInvalid:
		return http.StatusBadRequest
	case api.EUnauthorized:
		return http.StatusUnauthorized
	case api.EForbidden:
		return http.StatusForbidden
	case api.ENotFound:
		return http.StatusNotFound
	case api.EConflict:
		return http.StatusConflict
	case api.EBuildFailed, api.EQuota:
		return http.StatusUnprocessableEntity
	case api.ETimeout:
		return http.StatusGatewayTimeout
	case api.EUnavailable:
		return http.StatusServiceUnavailable
	case api.EUnsupported:
		return http.StatusNotImplemented
	case api.ERateLimited:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

// codeOfStatus maps statuses produced by echo itself (routing, binding) to
// api error codes.
func codeOfStatus(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		return api.EInvalid
	case http.StatusUnauthorized:
		return api.EUnauthorized
	case http.StatusForbidden:
		return api.EForbidden
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return api.ENotFound
	case http.StatusConflict:
		return api.EConflict
	case http.StatusServiceUnavailable:
		return api.EUnavailable
	case http.StatusNotImplemented:
		return api.EUnsupported
	}
	return api.EInternal
}

// errorBody is the JSON shape of every error answer.
type errorBody struct {
	Error *api.Error `json:"error"`
}

// toAPIError turns any error into the *api.Error shown to the client,
// logging internal ones with their detail.
func (s *Server) toAPIError(c echo.Context, err error) *api.Error {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code := codeOfStatus(he.Code)
		msg := http.StatusText(he.Code)
		switch he.Code {
		case http.StatusNotFound:
			msg = "no such endpoint " + c.Request().Method + " " + c.Request().URL.Path + " — see /v1/openapi.json"
		case http.StatusMethodNotAllowed:
			msg = "method " + c.Request().Method + " is not allowed on " + c.Request().URL.Path + " — see /v1/openapi.json"
		}
		if code == api.EInternal {
			s.log.Error("http.internal", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
			msg = "internal error — see the stratad log"
		}
		return &api.Error{Code: code, Message: msg}
	}
	code := api.ErrorCode(err)
	if code == api.EInternal {
		s.log.Error("http.internal", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
		return &api.Error{Code: api.EInternal, Message: "internal error — see the stratad log"}
	}
	return &api.Error{Code: code, Message: api.ErrorMessage(err)}
}

// handleError is echo's HTTPErrorHandler.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		s.log.Warn("http.error_after_commit", "path", c.Request().URL.Path, "err", err)
		return
	}
	ae := s.toAPIError(c, err)
	status := statusOf(ae.Code)
	if ae.Code == api.ENotFound {
		status = http.StatusNotFound
	}
	var he *echo.HTTPError
	if errors.As(err, &he) && he.Code == http.StatusMethodNotAllowed {
		status = http.StatusMethodNotAllowed
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	if err := c.JSON(status, errorBody{Error: ae}); err != nil {
		s.log.Debug("http.write_error", "err", err)
	}
}
