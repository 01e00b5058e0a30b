package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/strata-paas/strata/api"
)

// operateRoutes mounts the health check and task endpoints. A task answers
// an NDJSON stream of api.TaskEvent, ended by {"type":"error","error":…} on
// failure. openapi.json describes them.
func (s *Server) operateRoutes(authed *echo.Group) {
	authed.PUT("/apps/:name/health-check", s.setHealthCheck, s.idempotent)
	authed.POST("/apps/:name/tasks", s.runTask)
}

func (s *Server) setHealthCheck(c echo.Context) error {
	name, err := appName(c)
	if err != nil {
		return err
	}
	var req api.HealthCheckRequest
	if err := decodeBody(c, &req, `{"process":"web","type":"http","path":"/healthz","timeout":60}`, false); err != nil {
		return err
	}
	p, err := s.svc.Operate.SetHealthCheck(ctxOf(c), name, req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

// taskLine is one NDJSON line of a task stream: an api.TaskEvent, or an
// error that ended the stream.
type taskLine struct {
	api.TaskEvent
	Error *api.Error `json:"error,omitempty"`
}

// runTask streams a task: the response starts with the first event, so
// errors before it (unknown app, no node) are plain JSON errors; later ones
// end the stream with an error line.
func (s *Server) runTask(c echo.Context) error {
	name, err := appName(c)
	if err != nil {
		return err
	}
	var req api.TaskRequest
	if err := decodeBody(c, &req, `{"command":"echo hi"}`, false); err != nil {
		return err
	}
	stream := &pushStream{c: c}
	defer stream.close()
	_, err = s.svc.Operate.RunTask(ctxOf(c), name, req, func(ev api.TaskEvent) error {
		return stream.write(taskLine{TaskEvent: ev})
	})
	if err == nil {
		return nil
	}
	if !stream.began() {
		return err
	}
	_ = stream.write(taskLine{TaskEvent: api.TaskEvent{Type: pushError}, Error: s.toAPIError(c, err)})
	return nil
}
