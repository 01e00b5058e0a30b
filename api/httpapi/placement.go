package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/strata-paas/strata/api"
)

// placementRoutes mounts the placement and drain endpoints (space, org and
// drain ones for admins). openapi.json describes them.
func (s *Server) placementRoutes(authed, admin *echo.Group) {
	authed.GET("/spaces", s.spaces)
	authed.GET("/apps/:name/placement", s.appPlacement)
	authed.PUT("/apps/:name/placement", s.setAppPlacement, s.idempotent)
	admin.PUT("/spaces/:space/placement", s.setSpacePlacement, s.idempotent)
	admin.PUT("/org/placement", s.setOrgPlacement, s.idempotent)
	admin.POST("/nodes/:id/drain", s.drain(true), s.idempotent)
	admin.POST("/nodes/:id/undrain", s.drain(false), s.idempotent)
}

const policyExample = `{"substrate":"metal","isolation":"process","labels":{"zone":"a"}}`

func (s *Server) spaces(c echo.Context) error {
	spaces, err := s.svc.Placement.Spaces(ctxOf(c))
	if err != nil {
		return err
	}
	p, err := paginate(c, spaces, func(sp *api.SpaceInfo) string { return sp.Name })
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

func (s *Server) setSpacePlacement(c echo.Context) error {
	space := c.Param("space")
	if err := api.ValidateName("space", space); err != nil {
		return err
	}
	var pol api.PlacementPolicy
	if err := decodeBody(c, &pol, policyExample, true); err != nil {
		return err
	}
	info, err := s.svc.Placement.SetSpacePlacement(ctxOf(c), space, pol)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, info)
}

func (s *Server) setOrgPlacement(c echo.Context) error {
	var pol api.PlacementPolicy
	if err := decodeBody(c, &pol, policyExample, true); err != nil {
		return err
	}
	if err := s.svc.Placement.SetOrgPlacement(ctxOf(c), pol); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, pol)
}

func (s *Server) appPlacement(c echo.Context) error {
	name, err := appName(c)
	if err != nil {
		return err
	}
	pol, err := s.svc.Placement.AppPlacement(ctxOf(c), name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, pol)
}

func (s *Server) setAppPlacement(c echo.Context) error {
	name, err := appName(c)
	if err != nil {
		return err
	}
	var pol api.PlacementPolicy
	if err := decodeBody(c, &pol, policyExample, true); err != nil {
		return err
	}
	if err := s.svc.Placement.SetAppPlacement(ctxOf(c), name, pol); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, pol)
}

func (s *Server) drain(on bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Param("id")
		if id == "" || len(id) > 255 {
			return api.Errorf(api.EInvalid, "node id is empty or too long — see `strata nodes`")
		}
		var (
			n   *api.Node
			err error
		)
		if on {
			n, err = s.svc.Placement.DrainNode(ctxOf(c), id)
		} else {
			n, err = s.svc.Placement.UndrainNode(ctxOf(c), id)
		}
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, n)
	}
}
