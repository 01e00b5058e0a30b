package router

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/strata-paas/strata/router/registry"
)

// TableSource is what Metrics reads from the route registry at scrape time.
type TableSource interface {
	Table() *registry.Table
	Pruned() uint64
	PruningSuspended() bool
}

var _ TableSource = (*registry.Registry)(nil)

// Metrics holds the router's Prometheus instruments:
//
//	strata_router_requests_total{app,code}            counter, code is 1xx…5xx
//	strata_router_request_duration_seconds{app}       histogram
//	strata_router_routes, strata_router_endpoints     gauges from the table
//	strata_router_pruned_total                         leases dropped by pruning
//	strata_router_pruning_suspended                    1 while the bus is away
//
// Requests for unknown hosts count under app="-". Safe for concurrent use.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	apps     sync.Map // app name → *appMetrics
}

// appMetrics caches one app's instruments so that the request path does not
// hash label values.
type appMetrics struct {
	codes   [6]prometheus.Counter // index status/100; 0 for anything out of range
	latency prometheus.Observer
}

// NewMetrics returns Metrics that also report table gauges from src (nil:
// none) and the Go runtime's collectors.
func NewMetrics(src TableSource) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_router_requests_total",
			Help: "Requests answered by the router, by app and status class (2xx, 4xx, ...).",
		}, []string{"app", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strata_router_request_duration_seconds",
			Help:    "Time from the request's arrival to the end of its response, by app.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"app"}),
	}
	m.reg.MustRegister(m.requests, m.latency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if src != nil {
		m.reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strata_router_routes", Help: "Routes (host + path prefix) in the table."},
				func() float64 { return float64(src.Table().Routes()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strata_router_endpoints", Help: "Endpoints in the table, counted once per route."},
				func() float64 { return float64(src.Table().Endpoints()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "strata_router_pruned_total", Help: "Leases dropped because they were not renewed."},
				func() float64 { return float64(src.Pruned()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strata_router_pruning_suspended", Help: "1 while pruning is suspended (NATS connection lost)."},
				func() float64 {
					if src.PruningSuspended() {
						return 1
					}
					return 0
				}),
		)
	}
	return m
}

var codeLabels = [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

func (m *Metrics) app(name string) *appMetrics {
	if am, ok := m.apps.Load(name); ok {
		return am.(*appMetrics)
	}
	am := &appMetrics{latency: m.latency.WithLabelValues(name)}
	for i, c := range codeLabels {
		am.codes[i] = m.requests.WithLabelValues(name, c)
	}
	v, _ := m.apps.LoadOrStore(name, am)
	return v.(*appMetrics)
}

// observe counts one request of app ("" for an unknown host).
func (m *Metrics) observe(app string, status int, d time.Duration) {
	if app == "" {
		app = "-"
	}
	am := m.app(app)
	c := status / 100
	if c < 1 || c > 5 {
		c = 0
	}
	am.codes[c].Inc()
	am.latency.Observe(d.Seconds())
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// AdminHandler serves /metrics from m and /healthz (200 "ok") for the
// router's admin listener.
func AdminHandler(m *Metrics) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}
