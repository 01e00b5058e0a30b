package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/strata-paas/strata/api"
)

// routeRoutes mounts the route endpoints. openapi.json describes them.
func (s *Server) routeRoutes(authed *echo.Group) {
	authed.GET("/routes", s.listRoutes)
	authed.POST("/apps/:name/routes", s.mapRoute, s.idempotent)
	authed.DELETE("/apps/:name/routes", s.unmapRoute, s.idempotent)
}

func (s *Server) listRoutes(c echo.Context) error {
	routes, err := s.svc.Routes.ListRoutes(ctxOf(c))
	if err != nil {
		return err
	}
	p, err := paginate(c, routes, func(r *api.RouteInfo) string { return r.Host + r.Path })
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

func (s *Server) mapRoute(c echo.Context) error {
	name, err := appName(c)
	if err != nil {
		return err
	}
	var req api.RouteRequest
	if err := decodeBody(c, &req, `{"host":"blog.localhost","path":"/api"}`, false); err != nil {
		return err
	}
	r, err := s.svc.Routes.MapRoute(ctxOf(c), name, req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, r)
}

func (s *Server) unmapRoute(c echo.Context) error {
	name, err := appName(c)
	if err != nil {
		return err
	}
	req := api.RouteRequest{Host: c.QueryParam("host"), Path: c.QueryParam("path")}
	if req.Host == "" {
		return api.Errorf(api.EInvalid, "which route? add ?host=blog.localhost (and &path=/api for a path route)")
	}
	if err := s.svc.Routes.UnmapRoute(ctxOf(c), name, req); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
