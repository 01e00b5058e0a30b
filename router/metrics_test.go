package router_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/strata-paas/strata/router"
)

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("scrape: %d %v", resp.StatusCode, err)
	}
	return string(b)
}

func TestMetrics(t *testing.T) {
	var m *router.Metrics
	h := newHarnessWith(t, router.Config{}, func(src router.TableSource) router.Config {
		m = router.NewMetrics(src)
		return router.Config{Metrics: m}
	})
	h.register("m.localhost", backend(t, "m").URL, "m-0", "mapp")
	h.register("m.localhost", deadURL(t), "m-1", "mapp")
	h.register("dead.localhost", deadURL(t), "d-0", "dapp")
	for range 3 {
		h.do("GET", "m.localhost", "/", nil)
	}
	h.do("GET", "dead.localhost", "/", nil)
	h.do("GET", "nobody.localhost", "/", nil)

	text := scrape(t, router.AdminHandler(m))
	for _, want := range []string{
		`strata_router_requests_total{app="mapp",code="2xx"} 3`,
		`strata_router_requests_total{app="dapp",code="5xx"} 1`,
		`strata_router_requests_total{app="-",code="4xx"} 1`,
		`strata_router_request_duration_seconds_count{app="mapp"} 3`,
		`strata_router_routes 2`,
		`strata_router_endpoints 3`,
		`strata_router_pruned_total 0`,
		`strata_router_pruning_suspended 0`,
		`go_goroutines `,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(text, `app="mapp",code="5xx"} 1`) {
		t.Error("a retried dead endpoint counted as a failed request")
	}
}
