package client

import (
	"net/http"

	"github.com/strata-paas/strata/api"
)

// codeOfStatus maps an HTTP status to an api error code when the answer
// carries no JSON error body (a proxy in between, an old server). This is
// the client's one status → code mapping.
func codeOfStatus(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		return api.EInvalid
	case http.StatusUnauthorized:
		return api.EUnauthorized
	case http.StatusForbidden:
		return api.EForbidden
	case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusGone:
		return api.ENotFound
	case http.StatusConflict:
		return api.EConflict
	case http.StatusUnprocessableEntity:
		return api.EBuildFailed
	case http.StatusGatewayTimeout, http.StatusRequestTimeout:
		return api.ETimeout
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusTooManyRequests:
		return api.EUnavailable
	case http.StatusNotImplemented:
		return api.EUnsupported
	}
	return api.EInternal
}
