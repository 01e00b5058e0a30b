package router_test

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/router"
	"github.com/strata-paas/strata/router/registry"
)

// The reporter sends the routes that served since its previous report, with
// their apps, and nothing when none did.
func TestActivityReporterSendsRoutesServedSinceTheLastReport(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	reg := registry.New(registry.Config{Now: func() time.Time { return now }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	for i, host := range []string{"one.localhost", "two.localhost"} {
		if err := reg.Register(api.RouterRegistration{Host: "127.0.0.1", Port: 1001 + i, URIs: []string{host}, App: "app-" + host[:3], PrivateInstanceID: host}); err != nil {
			t.Fatal(err)
		}
	}
	var got []api.RouterActivity
	a := &router.ActivityReporter{Registry: reg, RouterID: "r1", Now: func() time.Time { return now },
		Publish: func(m api.RouterActivity) { got = append(got, m) }}
	if a.Report() || len(got) != 0 {
		t.Fatalf("a report without requests: %+v", got)
	}
	reg.Lookup("one.localhost", "/").Touch(now)
	now = now.Add(10 * time.Second)
	if !a.Report() || len(got) != 1 {
		t.Fatalf("reports after a request: %+v", got)
	}
	m := got[0]
	if m.Router != "r1" || m.Version != api.MessageVersion || !m.Time.Equal(now) || len(m.Routes) != 1 ||
		m.Routes[0].App != "app-one" || m.Routes[0].Host != "one.localhost" || !m.Routes[0].LastRequest.Equal(now.Add(-10*time.Second)) {
		t.Fatalf("report = %+v", m)
	}
	// Nothing served since: no report, although one.localhost served before.
	now = now.Add(10 * time.Second)
	if a.Report() || len(got) != 1 {
		t.Fatalf("a report without new requests: %+v", got[1:])
	}
}
