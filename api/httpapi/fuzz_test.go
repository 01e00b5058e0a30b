package httpapi_test

import (
	"log/slog"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/strata-paas/strata/api/httpapi"
	"github.com/strata-paas/strata/api/httpapi/httpapitest"
)

// FuzzQueries sends arbitrary names and query values: the API must answer
// 2xx or 4xx, never a 5xx.
func FuzzQueries(f *testing.F) {
	f.Add("hello", "2", "YQ", "app", "5", "false")
	f.Add("Hello_", "-1", "!!!", "a b", "x", "maybe")
	f.Add("a", "1000", "", "app/web/0", "0", "")
	env := httpapitest.Start(f, httpapitest.Options{})
	for _, name := range []string{"hello", "world"} {
		if _, err := env.Controller.Apps.CreateApp(env.AdminContext(), name); err != nil {
			f.Fatal(err)
		}
	}
	h := httpapi.New(httpapi.Config{Logger: slog.New(slog.DiscardHandler)}, env.Services).Handler()
	f.Fuzz(func(t *testing.T, name, limit, cursor, source, recent, follow string) {
		if follow != "" && follow != "false" && follow != "0" {
			follow = "false" // a followed stream would never end
		}
		paths := []string{
			"/v1/apps?" + url.Values{"limit": {limit}, "cursor": {cursor}}.Encode(),
			"/v1/apps/" + url.PathEscape(name),
			"/v1/apps/" + url.PathEscape(name) + "/logs?" + url.Values{"source": {source}, "recent": {recent}, "follow": {follow}}.Encode(),
			"/v1/blobs/" + url.PathEscape(name),
		}
		for _, p := range paths {
			req := httptest.NewRequest("GET", "http://x"+p, nil)
			req.Header.Set("Authorization", "Bearer "+env.AdminToken)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code >= 500 || rec.Code < 200 {
				t.Fatalf("GET %s: status %d: %s", p, rec.Code, rec.Body)
			}
			if rec.Code >= 400 && rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("GET %s: status %d with type %q", p, rec.Code, rec.Header().Get("Content-Type"))
			}
		}
	})
}
