package executor

import (
	"context"
	"time"

	"github.com/strata-paas/strata/api"
)

// Internals exposed to the black-box tests.
var (
	DetectSubstrate = detectSubstrate
	MemTotalMB      = memTotalMB
)

// SplitLines runs output through an instance's line writer and returns the
// envelopes it produced.
func SplitLines(chunks []string, flush bool) []api.LogEnvelope {
	rec := &recordPub{}
	ship := newLogShipper(rec, 1<<16)
	w := &lineWriter{ship: ship, app: "a", source: "app/web/0", stream: "stdout"}
	for _, c := range chunks {
		_, _ = w.Write([]byte(c))
	}
	if flush {
		w.Flush()
	}
	var out []api.LogEnvelope
	for len(ship.ch) > 0 {
		out = append(out, (<-ship.ch).env)
	}
	return out
}

type recordPub struct{}

func (recordPub) Publish(string, any) error { return nil }

// Clock is what a test drives an executor's time with: the ticks of its
// heartbeat loop and of its usage sampler, and the time usage samples are
// taken at (for CPU%). A nil field keeps the real one.
type Clock struct {
	Heartbeat, Sample <-chan time.Time
	Now               func() time.Time
}

// SetClock makes e use c. Call it before Run.
func SetClock(e *Executor, c Clock) {
	ticks := func(ch <-chan time.Time) tickFunc {
		return func(time.Duration) (<-chan time.Time, func()) { return ch, func() {} }
	}
	if c.Heartbeat != nil {
		e.heartbeatTicks = ticks(c.Heartbeat)
	}
	if c.Sample != nil {
		e.sampleTicks = ticks(c.Sample)
	}
	if c.Now != nil {
		e.now = c.Now
	}
}

// FetchDroplet fetches ref into dir through blobs as a start does, ending a
// fetch that receives nothing for stall.
func FetchDroplet(ctx context.Context, dir string, blobs BlobFetcher, stall time.Duration, ref api.BlobRef) error {
	c := newDropletCache(dir, blobs, 5)
	c.stall = stall
	_, release, err := c.acquire(ctx, ref)
	if err == nil {
		release()
	}
	return err
}
