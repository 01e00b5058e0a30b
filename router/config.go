package router

import (
	"time"

	"github.com/strata-paas/strata/api"
)

// Config configures the Proxy and its Server. Zero fields take the defaults
// of DefaultConfig.
type Config struct {
	// Domain is the apps' domain (e.g. "localhost"), named in the 404 page.
	Domain string

	// ReadHeaderTimeout bounds reading request headers (slowloris).
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes idle client keep-alive connections.
	IdleTimeout time.Duration
	// MaxHeaderBytes caps request header size.
	MaxHeaderBytes int
	// ShutdownGrace is how long Serve waits for in-flight requests at exit.
	ShutdownGrace time.Duration

	// ResponseHeaderTimeout bounds the wait for a backend's response headers
	// after the request was sent (then 504).
	ResponseHeaderTimeout time.Duration
	// DialTimeout bounds connecting to a backend (then the next one is tried).
	DialTimeout time.Duration
	// MaxTries is how many endpoints a request may try when connects fail.
	MaxTries int
	// MaxIdleConnsPerHost and MaxIdleConns size the backend keep-alive pool.
	MaxIdleConnsPerHost int
	MaxIdleConns        int
	// BackendIdleTimeout closes idle backend connections.
	BackendIdleTimeout time.Duration
	// FailedEndpointTTL is how long an endpoint that refused a connection is
	// tried only after the others.
	FailedEndpointTTL time.Duration

	// HoldTimeout is how long a request for a known route without endpoints
	// (its instances restarting) waits for one before a 503; 0 answers 503
	// at once (see hold.go). HoldMaxPerRoute caps the requests waiting per
	// route (past it: 503 at once); HoldMaxBody is the largest declared
	// request body that may wait (chunked bodies never wait).
	HoldTimeout     time.Duration
	HoldMaxPerRoute int
	HoldMaxBody     int64
	// Wake, when set, is called when a request is held for a sleeping route
	// (scale to zero), at most once a second per route, to ask for an
	// instance. It is called on the request goroutine and must not block.
	Wake func(api.RouterWake)

	// AccessLog, when set, receives one envelope per request of a known app.
	// It is called on the request goroutine and must not block.
	AccessLog func(api.LogEnvelope)
	// Metrics, when set, counts every request (see NewMetrics).
	Metrics *Metrics
	// Now is the clock; defaults to time.Now.
	Now func() time.Time
}

// Defaults for holding requests, used by stratad router (Config leaves
// holding off unless HoldTimeout is set).
const (
	DefaultHoldTimeout     = 10 * time.Second
	DefaultHoldMaxPerRoute = 1000
	DefaultHoldMaxBody     = 64 << 10
)

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Domain:                "localhost",
		ReadHeaderTimeout:     10 * time.Second,
		IdleTimeout:           90 * time.Second,
		MaxHeaderBytes:        64 << 10,
		ShutdownGrace:         10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		DialTimeout:           2 * time.Second,
		MaxTries:              3,
		MaxIdleConnsPerHost:   256,
		MaxIdleConns:          4096,
		BackendIdleTimeout:    30 * time.Second,
		FailedEndpointTTL:     5 * time.Second,
		Now:                   time.Now,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	set := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&c.ReadHeaderTimeout, d.ReadHeaderTimeout)
	set(&c.IdleTimeout, d.IdleTimeout)
	set(&c.ShutdownGrace, d.ShutdownGrace)
	set(&c.ResponseHeaderTimeout, d.ResponseHeaderTimeout)
	set(&c.DialTimeout, d.DialTimeout)
	set(&c.BackendIdleTimeout, d.BackendIdleTimeout)
	set(&c.FailedEndpointTTL, d.FailedEndpointTTL)
	if c.Domain == "" {
		c.Domain = d.Domain
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if c.MaxTries <= 0 {
		c.MaxTries = d.MaxTries
	}
	if c.MaxIdleConnsPerHost <= 0 {
		c.MaxIdleConnsPerHost = d.MaxIdleConnsPerHost
	}
	if c.MaxIdleConns <= 0 {
		c.MaxIdleConns = d.MaxIdleConns
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	return c
}
