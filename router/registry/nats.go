package registry

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/bus"
)

// Subscribe feeds reg from the bus: router.register and router.unregister
// (one subscription on "router.*", so that a register and a later unregister
// from the same executor are applied in the order they were sent), replies
// start to router.greet, publishes start now and after every reconnect, and
// suspends pruning while conn is disconnected (resuming, with every lease
// renewed, on reconnect). It stops when ctx ends or stop is called; stop is
// idempotent.
func Subscribe(ctx context.Context, conn *bus.Conn, reg *Registry, start api.RouterStart) (stop func(), err error) {
	log := reg.log
	var stopped atomic.Bool
	conn.OnConnectionChange(func(connected bool) {
		if stopped.Load() {
			return
		}
		if !connected {
			reg.SuspendPruning()
			return
		}
		reg.ResumePruning()
		if err := conn.Publish(api.SubjectRouterStart, start); err != nil {
			log.Warn("router.start_publish_failed", "err", err)
		}
	})
	if !conn.Connected() {
		reg.SuspendPruning()
	}

	sub, err := conn.Subscribe("router.*", "", func(m *bus.Msg) {
		switch m.Subject {
		case api.SubjectRouterRegister, api.SubjectRouterUnregister:
			var r api.RouterRegistration
			if err := json.Unmarshal(m.Data, &r); err != nil {
				log.Warn("route.bad_message", "subject", m.Subject, "err", err)
				return
			}
			apply := reg.Register
			if m.Subject == api.SubjectRouterUnregister {
				apply = reg.Unregister
			}
			if err := apply(r); err != nil {
				log.Warn("route.bad_message", "subject", m.Subject, "err", err)
			}
		case api.SubjectRouterGreet:
			if err := m.Reply(start); err != nil {
				log.Warn("router.greet_reply_failed", "err", err)
			}
		}
	})
	if err != nil {
		stopped.Store(true)
		return nil, err
	}
	if err := conn.Publish(api.SubjectRouterStart, start); err != nil {
		log.Warn("router.start_publish_failed", "err", err)
	}

	var once sync.Once
	done := make(chan struct{})
	stop = func() {
		once.Do(func() {
			stopped.Store(true)
			close(done)
			_ = sub.Unsubscribe()
		})
	}
	go func() {
		select {
		case <-ctx.Done():
			stop()
		case <-done:
		}
	}()
	return stop, nil
}
