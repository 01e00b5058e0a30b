package executor

import (
	"context"
	"time"

	"github.com/strata-paas/strata/deploy/driver"
)

// usageTimeout bounds one measurement of one instance.
const usageTimeout = time.Second

// sampleLoop measures the usage of every instance at once and then at each
// tick (every HeartbeatInterval) until ctx ends. Each measurement runs in a
// goroutine of its own and an instance has at most one in flight: a driver
// that is slow, or stuck, for one instance delays neither the others nor the
// heartbeat, which sends the latest measurement of each. Measurements in
// flight when ctx ends are cancelled, not waited for.
// Instances whose driver cannot measure (no driver.UsageReporter) report
// no usage.
func (e *Executor) sampleLoop(ctx context.Context) {
	ticks, stop := e.sampleTicks(e.cfg.HeartbeatInterval)
	defer stop()
	for {
		for _, in := range e.snapshot() {
			ur, ok := in.drv.(driver.UsageReporter)
			if ok && in.startMeasure() {
				go in.measure(ctx, ur)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		}
	}
}

// startMeasure marks a measurement of the instance in flight and reports
// whether it may start (none was in flight).
func (in *instance) startMeasure() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.measuring {
		return false
	}
	in.measuring = true
	return true
}

// measure samples the instance's usage through the driver and keeps CPU%
// over the time since the previous sample; a failed sample clears both.
// It ends the measurement startMeasure began.
func (in *instance) measure(ctx context.Context, ur driver.UsageReporter) {
	ctx, cancel := context.WithTimeout(ctx, usageTimeout)
	u, err := ur.Usage(ctx, in.spec.InstanceID)
	cancel()
	now := in.e.now()
	in.mu.Lock()
	defer in.mu.Unlock()
	in.measuring = false
	if err != nil {
		in.cpuPercent, in.memBytes, in.lastSample = 0, 0, time.Time{}
		return
	}
	if !in.lastSample.IsZero() && u.CPUTime >= in.lastCPU {
		if wall := now.Sub(in.lastSample); wall > 0 {
			in.cpuPercent = float64(u.CPUTime-in.lastCPU) / float64(wall) * 100
		}
	}
	in.memBytes, in.lastCPU, in.lastSample = u.MemoryBytes, u.CPUTime, now
}
