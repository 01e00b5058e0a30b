package httpapi_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/httpapi"
	"github.com/strata-paas/strata/api/httpapi/httpapitest"
)

type page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func TestLifecycleEndpoints(t *testing.T) {
	h := newHarness(t, httpapi.Config{}, nil)
	tok := h.env.UserToken
	for i := 0; i < 2; i++ {
		res := h.do("POST", "/v1/apps/hello/push?create=true", tok, strings.NewReader("src"))
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("push: %d", res.StatusCode)
		}
	}
	res := h.do("GET", "/v1/apps/hello/releases?limit=1", tok, nil)
	p := decode[page[api.Release]](t, res)
	if res.StatusCode != 200 || len(p.Items) != 1 || p.Items[0].Version != 2 || p.NextCursor == "" {
		t.Fatalf("releases page 1 = %d %+v", res.StatusCode, p)
	}
	p = decode[page[api.Release]](t, h.do("GET", "/v1/apps/hello/releases?limit=1&cursor="+p.NextCursor, tok, nil))
	if len(p.Items) != 1 || p.Items[0].Version != 1 || p.NextCursor != "" {
		t.Fatalf("releases page 2 = %+v", p)
	}

	res = h.do("POST", "/v1/apps/hello/rollback", tok, strings.NewReader(`{"version":1}`), "Idempotency-Key", "rb-1")
	rel := decode[api.Release](t, res)
	if res.StatusCode != http.StatusCreated || rel.Version != 3 || rel.Description != "Rollback to v1" || rel.Actor != httpapitest.UserName {
		t.Fatalf("rollback = %d %+v", res.StatusCode, rel)
	}
	res = h.do("POST", "/v1/apps/hello/rollback", tok, strings.NewReader(`{"version":1}`), "Idempotency-Key", "rb-1")
	if rel := decode[api.Release](t, res); res.Header.Get("Idempotent-Replayed") != "true" || rel.Version != 3 {
		t.Errorf("replayed rollback = %+v (%v)", rel, res.Header)
	}

	res = h.do("PATCH", "/v1/apps/hello/env", tok, strings.NewReader(`{"set":{"GREETING":"hi"}}`))
	if rel := decode[api.Release](t, res); res.StatusCode != 200 || rel.Env["GREETING"] != "hi" {
		t.Fatalf("env patch = %d %+v", res.StatusCode, rel)
	}
	env := decode[struct{ Env map[string]string }](t, h.do("GET", "/v1/apps/hello/env", tok, nil))
	if env.Env["GREETING"] != "hi" {
		t.Errorf("env = %+v", env)
	}
	res = h.do("PATCH", "/v1/apps/hello/env", tok, strings.NewReader(`{"set":{"LD_PRELOAD":"/x.so"}}`))
	if e := errorOf(t, res); res.StatusCode != 400 || e.Code != api.EInvalid || !strings.Contains(e.Message, "LD_PRELOAD") {
		t.Errorf("LD_PRELOAD = %d %+v", res.StatusCode, e)
	}
	res = h.do("PATCH", "/v1/apps/hello/env", tok, strings.NewReader(`{"set":`))
	if e := errorOf(t, res); res.StatusCode != 400 || e.Code != api.EInvalid {
		t.Errorf("bad JSON = %d %+v", res.StatusCode, e)
	}

	res = h.do("POST", "/v1/apps/hello/scale", tok, strings.NewReader(`{"instances":3,"memory_mb":512}`))
	if sr := decode[api.ScaleResult](t, res); res.StatusCode != 200 || sr.Process.Instances != 3 || sr.Process.MemoryMB != 512 {
		t.Fatalf("scale = %d %+v", res.StatusCode, sr)
	}
	res = h.do("POST", "/v1/apps/hello/stop", tok, nil)
	if app := decode[api.App](t, res); res.StatusCode != 200 || app.State != api.AppStopped {
		t.Errorf("stop = %d %+v", res.StatusCode, app)
	}
	res = h.do("POST", "/v1/apps/hello/start", tok, nil)
	if app := decode[api.App](t, res); res.StatusCode != 200 || app.State != api.AppStarted {
		t.Errorf("start = %d %+v", res.StatusCode, app)
	}
	res = h.do("POST", "/v1/apps/hello/restart", tok, nil)
	// v5 is the scale's (memory changed), v6 the restart's.
	if rel := decode[api.Release](t, res); res.StatusCode != http.StatusCreated || rel.Version != 6 || rel.Description != "Restart (v5)" {
		t.Errorf("restart = %d %+v", res.StatusCode, rel)
	}
	evs := decode[page[api.Event]](t, h.do("GET", "/v1/apps/hello/events", tok, nil))
	var types []string
	for _, e := range evs.Items {
		types = append(types, e.Type)
	}
	if strings.Join(types, ",") != "restart,app.start,app.stop,scale,env,rollback,release,build.staged,push,release,build.staged,push,app.create" {
		t.Errorf("event types newest first = %v", types)
	}
	for _, path := range []string{"/v1/apps/nope/releases", "/v1/apps/nope/events", "/v1/apps/nope/env"} {
		if res := h.do("GET", path, tok, nil); res.StatusCode != 404 {
			t.Errorf("GET %s = %d, want 404", path, res.StatusCode)
		}
	}
	if res := h.do("GET", "/v1/apps/hello/releases", "", nil); res.StatusCode != 401 {
		t.Errorf("releases without a token = %d", res.StatusCode)
	}
}

func TestLifecycleUnsupported(t *testing.T) {
	h := newHarness(t, httpapi.Config{}, func(s *httpapi.Services) {
		s.Lifecycle = httpapi.Unsupported{What: "managing releases, config and scale"}
	})
	res := h.do("GET", "/v1/apps/hello/releases", h.env.UserToken, nil)
	if e := errorOf(t, res); res.StatusCode != http.StatusNotImplemented || e.Code != api.EUnsupported {
		t.Errorf("releases without a lifecycle service = %d %+v", res.StatusCode, e)
	}
}
