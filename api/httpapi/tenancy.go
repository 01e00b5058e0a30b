package httpapi

import (
	"fmt"
	"net"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/strata-paas/strata/api"
)

// tenancyRoutes mounts login, users, tokens, orgs, spaces and roles.
// openapi.json describes them.
func (s *Server) tenancyRoutes(v1, authed *echo.Group) {
	v1.POST("/login", s.login)
	authed.POST("/logout", s.logout)
	authed.PUT("/password", s.changePassword)
	authed.GET("/tokens", s.tokens)
	authed.DELETE("/tokens/:id", s.revokeToken, s.idempotent)
	authed.GET("/users", s.listUsers)
	authed.POST("/users", s.createUser, s.idempotent)
	authed.DELETE("/users/:user", s.deleteUser, s.idempotent)
	authed.GET("/orgs", s.listOrgs)
	authed.POST("/orgs", s.createOrg, s.idempotent)
	authed.DELETE("/orgs/:org", s.deleteOrg, s.idempotent)
	authed.GET("/orgs/:org/spaces", s.listOrgSpaces)
	authed.POST("/orgs/:org/spaces", s.createSpace, s.idempotent)
	authed.DELETE("/orgs/:org/spaces/:space", s.deleteSpace, s.idempotent)
	authed.GET("/orgs/:org/members", s.members)
	authed.GET("/orgs/:org/events", s.orgEvents)
	authed.GET("/events", s.platformEvents)
	authed.PUT("/orgs/:org/roles", s.setRole, s.idempotent)
	authed.DELETE("/orgs/:org/roles", s.unsetRole, s.idempotent)
	authed.GET("/orgs/:org/quotas", s.quotas)
	authed.PUT("/orgs/:org/quota", s.setQuota, s.idempotent)
	authed.PUT("/orgs/:org/spaces/:space/quota", s.setQuota, s.idempotent)
	authed.GET("/domains", s.listDomains)
	authed.POST("/domains", s.createDomain, s.idempotent)
	authed.DELETE("/domains/:domain", s.deleteDomain, s.idempotent)
	authed.GET("/buildpacks", s.listBuildpacks)
	authed.POST("/buildpacks", s.putBuildpack(true), s.idempotent)
	authed.PUT("/buildpacks/:buildpack", s.putBuildpack(false), s.idempotent)
	authed.DELETE("/buildpacks/:buildpack", s.deleteBuildpack, s.idempotent)
}

// targetOf reads the X-Strata-Org and X-Strata-Space headers of a request.
func targetOf(r *http.Request) (api.Target, error) {
	t := api.Target{Org: r.Header.Get(api.HeaderOrg), Space: r.Header.Get(api.HeaderSpace)}
	return t, t.Validate()
}

// nameParam returns a validated path parameter.
func nameParam(c echo.Context, param, kind string) (string, error) {
	v := c.Param(param)
	if err := api.ValidateName(kind, v); err != nil {
		return "", err
	}
	return v, nil
}

// login answers a token for a user name and password. The throttle counts
// the connection's address (not a forwarded one, which a caller could
// choose).
func (s *Server) login(c echo.Context) error {
	var req api.LoginRequest
	if err := decodeBody(c, &req, `{"username":"alice","password":"…"}`, false); err != nil {
		return err
	}
	from, _, err := net.SplitHostPort(c.Request().RemoteAddr)
	if err != nil {
		from = c.Request().RemoteAddr
	}
	res, err := s.svc.Users.Login(ctxOf(c), req, from)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

func (s *Server) logout(c echo.Context) error {
	if err := s.svc.Users.Logout(ctxOf(c)); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) changePassword(c echo.Context) error {
	var ch api.PasswordChange
	if err := decodeBody(c, &ch, `{"old":"…","new":"…"}`, false); err != nil {
		return err
	}
	if err := s.svc.Users.ChangePassword(ctxOf(c), ch); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) tokens(c echo.Context) error {
	ts, err := s.svc.Users.Tokens(ctxOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ts)
}

func (s *Server) revokeToken(c echo.Context) error {
	if err := s.svc.Users.RevokeToken(ctxOf(c), c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) listUsers(c echo.Context) error {
	us, err := s.svc.Users.ListUsers(ctxOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, us)
}

func (s *Server) createUser(c echo.Context) error {
	var req api.UserRequest
	if err := decodeBody(c, &req, `{"name":"alice","admin":false}`, false); err != nil {
		return err
	}
	u, err := s.svc.Users.CreateUser(ctxOf(c), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, u)
}

func (s *Server) deleteUser(c echo.Context) error {
	name, err := nameParam(c, "user", "user")
	if err != nil {
		return err
	}
	if err := s.svc.Users.DeleteUser(ctxOf(c), name); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) listOrgs(c echo.Context) error {
	orgs, err := s.svc.Orgs.ListOrgs(ctxOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, orgs)
}

func (s *Server) createOrg(c echo.Context) error {
	var req struct {
		Name string `json:"name"`
	}
	if err := decodeBody(c, &req, `{"name":"acme"}`, false); err != nil {
		return err
	}
	o, err := s.svc.Orgs.CreateOrg(ctxOf(c), req.Name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, o)
}

func recursive(c echo.Context) bool { return c.QueryParam("recursive") == "true" }

func (s *Server) deleteOrg(c echo.Context) error {
	org, err := nameParam(c, "org", "org")
	if err != nil {
		return err
	}
	if err := s.svc.Orgs.DeleteOrg(ctxOf(c), org, recursive(c)); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) listOrgSpaces(c echo.Context) error {
	org, err := nameParam(c, "org", "org")
	if err != nil {
		return err
	}
	spaces, err := s.svc.Orgs.ListSpaces(ctxOf(c), org)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, spaces)
}

func (s *Server) createSpace(c echo.Context) error {
	org, err := nameParam(c, "org", "org")
	if err != nil {
		return err
	}
	var req struct {
		Name string `json:"name"`
	}
	if err := decodeBody(c, &req, `{"name":"dev"}`, false); err != nil {
		return err
	}
	sp, err := s.svc.Orgs.CreateSpace(ctxOf(c), org, req.Name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, sp)
}

func (s *Server) deleteSpace(c echo.Context) error {
	org, err := nameParam(c, "org", "org")
	if err != nil {
		return err
	}
	space, err := nameParam(c, "space", "space")
	if err != nil {
		return err
	}
	if err := s.svc.Orgs.DeleteSpace(ctxOf(c), org, space, recursive(c)); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) members(c echo.Context) error {
	org, err := nameParam(c, "org", "org")
	if err != nil {
		return err
	}
	ms, err := s.svc.Orgs.Members(ctxOf(c), org)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ms)
}

// roleRequest reads a role change: the org from the path, user, role and
// space from the body (PUT) or the query (DELETE).
func roleRequest(c echo.Context) (api.RoleRequest, error) {
	org, err := nameParam(c, "org", "org")
	if err != nil {
		return api.RoleRequest{}, err
	}
	req := api.RoleRequest{User: c.QueryParam("user"), Role: api.Role(c.QueryParam("role")), Space: c.QueryParam("space")}
	if c.Request().Method == http.MethodPut {
		if err := decodeBody(c, &req, `{"user":"alice","role":"space-developer","space":"dev"}`, false); err != nil {
			return api.RoleRequest{}, err
		}
	}
	req.Org = org // the controller checks the rest (api.OrgService)
	return req, nil
}

func (s *Server) setRole(c echo.Context) error {
	req, err := roleRequest(c)
	if err != nil {
		return err
	}
	if err := s.svc.Orgs.SetRole(ctxOf(c), req); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) unsetRole(c echo.Context) error {
	req, err := roleRequest(c)
	if err != nil {
		return err
	}
	if err := s.svc.Orgs.UnsetRole(ctxOf(c), req); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) quotas(c echo.Context) error {
	org, err := nameParam(c, "org", "org")
	if err != nil {
		return err
	}
	qs, err := s.svc.Quotas.Quotas(ctxOf(c), org)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, qs)
}

// setQuota sets the org's quota, or a space's when the path names one.
func (s *Server) setQuota(c echo.Context) error {
	org, err := nameParam(c, "org", "org")
	if err != nil {
		return err
	}
	req := api.QuotaRequest{Org: org}
	if c.Param("space") != "" {
		if req.Space, err = nameParam(c, "space", "space"); err != nil {
			return err
		}
	}
	if err := decodeBody(c, &req.Quota, `{"memory_mb":4096,"instances":10,"apps":5,"routes":10}`, false); err != nil {
		return err
	}
	q, err := s.svc.Quotas.SetQuota(ctxOf(c), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, q)
}

func (s *Server) listBuildpacks(c echo.Context) error {
	bps, err := s.svc.Buildpacks.ListBuildpacks(ctxOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, bps)
}

// putBuildpack registers (POST ?name=) or replaces (PUT /:buildpack) a
// buildpack; the body is the gzip tar of its directory, ?position= its
// place in detection (1 first; default last, or where it was).
func (s *Server) putBuildpack(create bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		name := c.Param("buildpack") // the controller checks the name
		if create {
			name = c.QueryParam("name")
		}
		pos := 0
		if p := c.QueryParam("position"); p != "" {
			if _, err := fmt.Sscan(p, &pos); err != nil || pos < 1 {
				return api.Errorf(api.EInvalid, "position %q is not a number from 1 — 1 is tried first", p)
			}
		}
		info, err := s.svc.Buildpacks.PutBuildpack(ctxOf(c), name, pos, c.Request().Body, create)
		if err != nil {
			return err
		}
		status := http.StatusOK
		if create {
			status = http.StatusCreated
		}
		return c.JSON(status, info)
	}
}

func (s *Server) deleteBuildpack(c echo.Context) error {
	if err := s.svc.Buildpacks.DeleteBuildpack(ctxOf(c), c.Param("buildpack")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) orgEvents(c echo.Context) error {
	org, err := nameParam(c, "org", "org")
	if err != nil {
		return err
	}
	evs, err := s.svc.Orgs.OrgEvents(ctxOf(c), org, MaxPageSize)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, evs)
}

func (s *Server) platformEvents(c echo.Context) error {
	evs, err := s.svc.Orgs.PlatformEvents(ctxOf(c), MaxPageSize)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, evs)
}

func (s *Server) listDomains(c echo.Context) error {
	ds, err := s.svc.Domains.ListDomains(ctxOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ds)
}

func (s *Server) createDomain(c echo.Context) error {
	var d api.DomainInfo
	if err := decodeBody(c, &d, `{"name":"apps.example.com","org":"acme"}`, false); err != nil {
		return err
	}
	out, err := s.svc.Domains.CreateDomain(ctxOf(c), d)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, out)
}

func (s *Server) deleteDomain(c echo.Context) error {
	if err := s.svc.Domains.DeleteDomain(ctxOf(c), c.Param("domain")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
