package httpapi

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/strata-paas/strata/api"
)

// lifecycleCall validates :name and calls fn with the lifecycle service.
func (s *Server) lifecycleCall(c echo.Context, fn func(l api.LifecycleService, name string) error) error {
	name, err := appName(c)
	if err != nil {
		return err
	}
	return fn(s.svc.Lifecycle, name)
}

// decodeBody reads a JSON request body of at most 1 MiB into v; an empty
// body leaves v as it is when emptyOK.
func decodeBody(c echo.Context, v any, example string, emptyOK bool) error {
	body, err := readLimited(c.Request().Body, 1<<20, "request body")
	if err != nil {
		return err
	}
	if len(body) == 0 && emptyOK {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return api.Errorf(api.EInvalid, "request body is not valid JSON: %v — send %s", err, example)
	}
	return nil
}

func (s *Server) releases(c echo.Context) error {
	return s.lifecycleCall(c, func(l api.LifecycleService, name string) error {
		rels, err := l.Releases(ctxOf(c), name)
		if err != nil {
			return err
		}
		// Newest first: the key grows as the version falls.
		p, err := paginate(c, rels, func(r *api.Release) string { return fmt.Sprintf("%020d", math.MaxInt64-int64(r.Version)) })
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, p)
	})
}

// rollbackRequest is the body of POST /v1/apps/:name/rollback.
type rollbackRequest struct {
	Version int `json:"version"` // 0 = the previous different release
}

func (s *Server) rollback(c echo.Context) error {
	return s.lifecycleCall(c, func(l api.LifecycleService, name string) error {
		var req rollbackRequest
		if err := decodeBody(c, &req, `{"version":2}`, true); err != nil {
			return err
		}
		rel, err := l.Rollback(ctxOf(c), name, req.Version)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, rel)
	})
}

// envResponse is the answer of GET /v1/apps/:name/env.
type envResponse struct {
	Env map[string]string `json:"env"`
}

func (s *Server) env(c echo.Context) error {
	return s.lifecycleCall(c, func(l api.LifecycleService, name string) error {
		env, err := l.Env(ctxOf(c), name)
		if err != nil {
			return err
		}
		if env == nil {
			env = map[string]string{}
		}
		return c.JSON(http.StatusOK, envResponse{Env: env})
	})
}

func (s *Server) changeEnv(c echo.Context) error {
	return s.lifecycleCall(c, func(l api.LifecycleService, name string) error {
		var ch api.EnvChange
		if err := decodeBody(c, &ch, `{"set":{"GREETING":"hi"},"unset":["OLD"]}`, false); err != nil {
			return err
		}
		rel, err := l.ChangeEnv(ctxOf(c), name, ch)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, rel)
	})
}

func (s *Server) scale(c echo.Context) error {
	return s.lifecycleCall(c, func(l api.LifecycleService, name string) error {
		var req api.ScaleRequest
		if err := decodeBody(c, &req, `{"process":"web","instances":2,"memory_mb":512}`, false); err != nil {
			return err
		}
		res, err := l.Scale(ctxOf(c), name, req)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, res)
	})
}

func (s *Server) setState(state api.AppState) echo.HandlerFunc {
	return func(c echo.Context) error {
		return s.lifecycleCall(c, func(l api.LifecycleService, name string) error {
			app, err := l.SetState(ctxOf(c), name, state)
			if err != nil {
				return err
			}
			return c.JSON(http.StatusOK, app)
		})
	}
}

func (s *Server) restart(c echo.Context) error {
	return s.lifecycleCall(c, func(l api.LifecycleService, name string) error {
		rel, err := l.Restart(ctxOf(c), name)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, rel)
	})
}

func (s *Server) events(c echo.Context) error {
	return s.lifecycleCall(c, func(l api.LifecycleService, name string) error {
		evs, err := l.Events(ctxOf(c), name, MaxPageSize)
		if err != nil {
			return err
		}
		// Newest first: the key grows as the time falls; the index breaks ties.
		keys := make(map[*api.Event]string, len(evs))
		for i, e := range evs {
			keys[e] = fmt.Sprintf("%020d", math.MaxInt64-e.Time.UnixNano()) + fmt.Sprintf("%06d", i)
		}
		p, err := paginate(c, evs, func(e *api.Event) string { return keys[e] })
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, p)
	})
}
