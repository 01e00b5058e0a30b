package httpapi

import "github.com/labstack/echo/v4"

// Routes returns the routes s's router serves, for openapi_test.go.
func Routes(s *Server) []*echo.Route { return s.e.Routes() }
