package httpapi_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/httpapi"
	"github.com/strata-paas/strata/api/httpapi/httpapitest"
)

// Two API servers on one database (two controllers) replay each other's
// idempotent responses: a retry that reaches another controller does not
// run the request again.
func TestIdempotencyKeySharedByServers(t *testing.T) {
	env := httpapitest.Start(t, httpapitest.Options{})
	var urls []string
	for range 2 {
		srv := httptest.NewServer(httpapi.New(httpapi.Config{Logger: testLogger(t), Idempotency: env.Store, Info: api.Info{Version: "test"}}, env.Services).Handler())
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
	}
	create := func(url, body string) (*http.Response, string) {
		req, _ := http.NewRequest("POST", url+"/v1/apps", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+env.UserToken)
		req.Header.Set("Idempotency-Key", "k1")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	res1, body1 := create(urls[0], `{"name":"hello"}`)
	res2, body2 := create(urls[1], `{"name":"hello"}`)
	if res1.StatusCode != 201 || res2.StatusCode != 201 || body1 != body2 || res2.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("through A %d %q, then through B %d %q (replayed %q); want B to replay A's 201", res1.StatusCode, body1, res2.StatusCode, body2, res2.Header.Get("Idempotent-Replayed"))
	}
	if apps, err := env.Controller.Apps.ListApps(env.AdminContext()); err != nil || len(apps) != 1 {
		t.Fatalf("apps after the replay: %d, %v; want 1", len(apps), err)
	}
	if res, body := create(urls[1], `{"name":"other"}`); res.StatusCode != 400 {
		t.Fatalf("same key, other body, through B: %d %s, want 400", res.StatusCode, body)
	}
}
