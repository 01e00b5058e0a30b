package router_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/router"
)

// BenchmarkProxy compares requests sent straight to a backend ("direct") with
// the same requests through the router ("router"), both over loopback with
// keep-alive clients. The ratio of the two ns/op is the router's overhead.
func BenchmarkProxy(b *testing.B) {
	payload := strings.Repeat("x", 1024)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, payload)
	}))
	b.Cleanup(be.Close)

	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := newHarnessLogger(b, router.Config{AccessLog: func(api.LogEnvelope) {}}, discard)
	h.register("bench.localhost", be.URL, "bench-0", "bench")

	run := func(b *testing.B, url, host string) {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}}
		b.Cleanup(client.CloseIdleConnections)
		b.ReportAllocs()
		b.SetBytes(int64(len(payload)))
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, _ := http.NewRequest("GET", url+"/", nil)
				req.Host = host
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		})
	}
	b.Run("direct", func(b *testing.B) { run(b, be.URL, "bench.localhost") })
	b.Run("router", func(b *testing.B) { run(b, h.url, "bench.localhost") })
}
