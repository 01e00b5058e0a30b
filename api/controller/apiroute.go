package controller

import (
	"context"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/bus"
)

// The controllers' own route (docs/architecture.md, "One API address"): as
// in Cloud Foundry, every controller registers api.<domain> with the
// routers for its REST and git address, so users reach whichever
// controllers are up through one name. App names cannot be "api"
// (validAppName), so no app can take the route.

// apiRouteEvery is how often a controller re-registers its API route;
// the route's lease is three times as long.
const apiRouteEvery = 5 * time.Second

// APIHost is the host name of the controllers' route on domain.
func APIHost(domain string) string { return "api." + domain }

// AdvertiseAPI registers APIHost(Domain) → host:port with the routers every
// few seconds and whenever a router starts, until ctx ends, then
// unregisters it.
func (c *Controller) AdvertiseAPI(ctx context.Context, host string, port int) error {
	reg := api.RouterRegistration{
		Host: host, Port: port, URIs: []string{APIHost(c.cfg.Domain)},
		PrivateInstanceID:   "controller-" + c.cfg.ControllerID,
		Tags:                map[string]string{"component": "controller"},
		StaleThresholdInSec: int(3 * apiRouteEvery / time.Second),
	}
	publish := func(subject string) {
		if err := c.conn.Publish(subject, reg); err != nil {
			c.log.Warn("controller.api_route_failed", "subject", subject, "err", err)
		}
	}
	sub, err := bus.SubscribeJSON(c.conn, api.SubjectRouterStart, "", func(_ string, _ *api.RouterStart) {
		publish(api.SubjectRouterRegister) // a (re)started router learns it at once
	})
	if err != nil {
		return err
	}
	defer func() { _ = sub.Unsubscribe() }()
	t := time.NewTicker(apiRouteEvery)
	defer t.Stop()
	for {
		publish(api.SubjectRouterRegister)
		select {
		case <-ctx.Done():
			publish(api.SubjectRouterUnregister)
			fctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = c.conn.Flush(fctx)
			cancel()
			return nil
		case <-t.C:
		}
	}
}
