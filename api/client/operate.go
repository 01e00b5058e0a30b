package client

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"

	"github.com/strata-paas/strata/api"
)

// SetHealthCheck sets how the instances of one process type are checked.
func (c *Client) SetHealthCheck(ctx context.Context, app string, req api.HealthCheckRequest) (*api.Process, error) {
	var p api.Process
	if err := c.mutate(ctx, http.MethodPut, app, "/health-check", req, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// taskLine is one NDJSON line of a task stream.
type taskLine struct {
	api.TaskEvent
	Error *api.Error `json:"error"`
}

// RunTask runs command in the app's current release, calling onEvent with
// the started event and each output line as they arrive, and returns the
// exit event (ExitCode nil when the task was killed by a signal).
func (c *Client) RunTask(ctx context.Context, app string, req api.TaskRequest, onEvent func(api.TaskEvent)) (*api.TaskEvent, error) {
	r := request{method: http.MethodPost, path: appPath(app, "/tasks"), ctype: "application/json"}
	r.body, r.size = jsonBody(req)
	res, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), MaxPushLine)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var l taskLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, api.Errorf(api.EInternal, "the API sent a malformed task line: %v — check that %s is a Strata API", err, c.base)
		}
		switch l.Type {
		case api.TaskEventExit:
			return &l.TaskEvent, nil
		case "error":
			if l.Error == nil || l.Error.Code == "" {
				return nil, api.Errorf(api.EInternal, "the task failed without a reason — see the stratad log")
			}
			return nil, l.Error
		case api.TaskEventStarted, api.TaskEventLog:
			if onEvent != nil {
				onEvent(l.TaskEvent)
			}
		}
		// Unknown line types come from newer servers: ignore them.
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err := sc.Err(); err != nil {
		return nil, api.Errorf(api.EUnavailable, "the task stream broke: %v — the task was stopped", err)
	}
	return nil, api.Errorf(api.EUnavailable, "the API closed the task stream before the task ended — see strata logs %s", app)
}
