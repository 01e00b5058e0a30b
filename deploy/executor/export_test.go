package executor

import (
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
