package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/strata-paas/strata/api"
)

// Pagination limits.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// page is the JSON shape of a list answer.
type page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// paginate returns one page of items, which must be sorted by key. The
// cursor is the opaque encoding of the last key of the previous page, so
// pages stay stable when items are added or removed between calls.
func paginate[T any](c echo.Context, items []T, key func(T) string) (page[T], error) {
	limit := DefaultPageSize
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxPageSize {
			return page[T]{}, api.Errorf(api.EInvalid, "limit %q must be a number from 1 to %d", v, MaxPageSize)
		}
		limit = n
	}
	start := 0
	if cur := c.QueryParam("cursor"); cur != "" {
		b, err := base64.RawURLEncoding.DecodeString(cur)
		if err != nil || len(b) == 0 {
			return page[T]{}, api.Errorf(api.EInvalid, "cursor %q is not valid — pass the next_cursor of the previous page", cur)
		}
		after := string(b)
		start = sort.Search(len(items), func(i int) bool { return key(items[i]) > after })
	}
	end := min(start+limit, len(items))
	p := page[T]{Items: items[start:end]}
	if p.Items == nil {
		p.Items = []T{}
	}
	if end < len(items) {
		p.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(key(items[end-1])))
	}
	return p, nil
}

func (s *Server) listApps(c echo.Context) error {
	apps, err := s.svc.Apps.ListApps(ctxOf(c))
	if err != nil {
		return err
	}
	sort.Slice(apps, func(i, j int) bool { return apps[i].Name < apps[j].Name })
	p, err := paginate(c, apps, func(a *api.AppSummary) string { return a.Name })
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

// createAppRequest is the body of POST /v1/apps.
type createAppRequest struct {
	Name string `json:"name"`
}

func (s *Server) createApp(c echo.Context) error {
	body, err := readLimited(c.Request().Body, 64<<10, "request body")
	if err != nil {
		return err
	}
	var req createAppRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return api.Errorf(api.EInvalid, "request body is not valid JSON: %v — send {\"name\":\"hello\"}", err)
	}
	if err := api.ValidateAppName(req.Name); err != nil {
		return err
	}
	app, err := s.svc.Apps.CreateApp(ctxOf(c), req.Name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, app)
}

// appName returns the validated :name path parameter.
func appName(c echo.Context) (string, error) {
	name := c.Param("name")
	if err := api.ValidateName("app", name); err != nil {
		return "", err
	}
	return name, nil
}

func (s *Server) appDetail(c echo.Context) error {
	name, err := appName(c)
	if err != nil {
		return err
	}
	d, err := s.svc.Apps.AppDetail(ctxOf(c), name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

func (s *Server) deleteApp(c echo.Context) error {
	name, err := appName(c)
	if err != nil {
		return err
	}
	if err := s.svc.Apps.DeleteApp(ctxOf(c), name); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) nodes(c echo.Context) error {
	nodes, err := s.svc.Nodes.Nodes(ctxOf(c))
	if err != nil {
		return err
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].ID < nodes[j].ID })
	p, err := paginate(c, nodes, func(n api.Node) string { return n.ID })
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

func (s *Server) purgeCache(c echo.Context) error {
	name, err := appName(c)
	if err != nil {
		return err
	}
	if err := s.svc.Apps.PurgeCache(ctxOf(c), name); err != nil {
		return err
	}
	return c.NoContent(http.StatusAccepted)
}
