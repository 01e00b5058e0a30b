package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/strata-paas/strata/deploy/executor"
)

// instanceTuning holds the executor flags that shape how instances are
// stopped and restarted; both `stratad executor` and `stratad microcloud`
// take them.
type instanceTuning struct {
	stopGrace, drainDelay      *time.Duration
	backoff, maxBackoff, reset *time.Duration
	immediate                  *int
}

// addInstanceTuning registers the instance flags on fs with the executor's
// defaults.
func addInstanceTuning(fs *flag.FlagSet) *instanceTuning {
	return &instanceTuning{
		stopGrace:  fs.Duration("stop-grace", 10*time.Second, "time between SIGTERM and SIGKILL when an instance stops"),
		drainDelay: fs.Duration("drain-delay", time.Second, "time a stopping instance keeps serving after its routes are withdrawn, before SIGTERM"),
		immediate:  fs.Int("restart-immediate", 3, "crashes restarted at once before backing off"),
		backoff:    fs.Duration("restart-backoff", time.Second, "first restart delay after the immediate restarts; it doubles per crash"),
		maxBackoff: fs.Duration("restart-backoff-max", 30*time.Second, "longest restart delay"),
		reset:      fs.Duration("restart-reset", time.Minute, "healthy time after which an instance's crash count starts again"),
	}
}

// apply validates the flags and sets them on cfg.
func (t *instanceTuning) apply(cfg *executor.Config) error {
	for _, d := range []struct {
		name     string
		v        time.Duration
		min, max time.Duration
	}{
		{"--stop-grace", *t.stopGrace, 100 * time.Millisecond, 10 * time.Minute},
		{"--drain-delay", *t.drainDelay, 10 * time.Millisecond, time.Minute},
		{"--restart-backoff", *t.backoff, time.Millisecond, time.Hour},
		{"--restart-backoff-max", *t.maxBackoff, time.Millisecond, 24 * time.Hour},
		{"--restart-reset", *t.reset, time.Second, 24 * time.Hour},
	} {
		if d.v < d.min || d.v > d.max {
			return fmt.Errorf("%s %s is outside %s–%s — give a duration such as 10s", d.name, d.v, d.min, d.max)
		}
	}
	if *t.immediate < 0 || *t.immediate > 100 {
		return fmt.Errorf("--restart-immediate %d is outside 0–100", *t.immediate)
	}
	if *t.maxBackoff < *t.backoff {
		return fmt.Errorf("--restart-backoff-max %s is shorter than --restart-backoff %s — raise it", *t.maxBackoff, *t.backoff)
	}
	cfg.StopGrace = *t.stopGrace
	cfg.DrainDelay = *t.drainDelay
	cfg.Restart = executor.RestartPolicy{Immediate: *t.immediate, Backoff: *t.backoff, MaxBackoff: *t.maxBackoff, ResetAfter: *t.reset}
	if *t.immediate == 0 {
		cfg.Restart.Immediate = -1 // the config's zero means "default"; negative means none
	}
	return nil
}
