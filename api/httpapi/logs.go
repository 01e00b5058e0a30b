package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/strata-paas/strata/api"
)

// MaxRecentLogs caps ?recent=.
const MaxRecentLogs = 10000

func (s *Server) logs(c echo.Context) error {
	name, err := appName(c)
	if err != nil {
		return err
	}
	q := api.LogQuery{App: name, Source: c.QueryParam("source")}
	if err := validSource(q.Source); err != nil {
		return err
	}
	if v := c.QueryParam("recent"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > MaxRecentLogs {
			return api.Errorf(api.EInvalid, "recent=%q must be a number from 0 to %d", v, MaxRecentLogs)
		}
		q.Recent = n
	}
	if q.Follow, err = boolParam(c, "follow"); err != nil {
		return err
	}
	if q.Follow {
		return s.followLogs(c, q)
	}
	items := []api.LogEnvelope{}
	err = s.svc.Logs.Logs(ctxOf(c), q, func(e api.LogEnvelope) error {
		items = append(items, e)
		return nil
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, page[api.LogEnvelope]{Items: items})
}

// validSource accepts "", a source name, or a source prefix like app/web/0.
func validSource(src string) error {
	if len(src) > 128 {
		return api.Errorf(api.EInvalid, "source is too long — use app, staging, router or strata")
	}
	for i := 0; i < len(src); i++ {
		ch := src[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '/' || ch == '_' || ch == '.') {
			return api.Errorf(api.EInvalid, "source %q is not valid — use app, staging, router or strata", src)
		}
	}
	return nil
}

// followLogs streams log envelopes as Server-Sent Events until the client
// goes away or the log service ends.
func (s *Server) followLogs(c echo.Context, q api.LogQuery) error {
	res := c.Response()
	rc := http.NewResponseController(res.Writer)
	res.Header().Set(echo.HeaderContentType, "text/event-stream")
	res.Header().Set("Cache-Control", "no-cache")
	res.Header().Set("X-Accel-Buffering", "no")
	res.WriteHeader(http.StatusOK)

	var mu sync.Mutex
	closed := false // set when the handler returns: no writes after that
	write := func(b []byte) error {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			return http.ErrHandlerTimeout
		}
		if _, err := res.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}
	if err := write([]byte(": connected\n\n")); err != nil {
		return nil
	}

	ctx := ctxOf(c)
	done := make(chan struct{})
	var wg sync.WaitGroup
	defer func() {
		mu.Lock()
		closed = true
		mu.Unlock()
		close(done)
		wg.Wait()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(s.cfg.KeepAlive)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if write([]byte(": keepalive\n\n")) != nil {
					return
				}
			}
		}
	}()

	err := s.svc.Logs.Logs(ctx, q, func(e api.LogEnvelope) error {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		return write(append(append([]byte("data: "), b...), '\n', '\n'))
	})
	if err != nil && ctx.Err() == nil {
		// The stream has started: report the failure as an SSE error event.
		ae := s.toAPIError(c, err)
		b, _ := json.Marshal(errorBody{Error: ae})
		_ = write(append(append([]byte("event: error\ndata: "), b...), '\n', '\n'))
	}
	return nil
}
