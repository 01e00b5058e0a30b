package gitpush

import (
	"bytes"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
)

// keepalivePkt is an empty packet on the primary band, which the git client
// ignores; git's own receive-pack sends the same during long hooks.
var keepalivePkt = []byte("0005\x01")

// responseWriter writes the receive-pack result: progress on sideband channel
// 2 (shown by git as `remote:` lines), the report-status on channel 1 and a
// final flush-pkt. Without sideband, progress is dropped. It is safe for
// concurrent use; write errors (a gone client) are remembered and later
// writes are skipped.
type responseWriter struct {
	mu      sync.Mutex
	w       io.Writer
	flusher http.Flusher
	mux     *sideband.Muxer // nil without sideband
	last    time.Time       // last write
	err     error
}

func newResponseWriter(w http.ResponseWriter, band sideband.Type, useBand bool) *responseWriter {
	rw := &responseWriter{w: w, last: time.Now()}
	rw.flusher, _ = w.(http.Flusher)
	if useBand {
		rw.mux = sideband.NewMuxer(band, w)
	}
	return rw
}

func (rw *responseWriter) flush() {
	rw.last = time.Now()
	if rw.flusher != nil && rw.err == nil {
		rw.flusher.Flush()
	}
}

// Line writes one progress line.
func (rw *responseWriter) Line(s string) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.mux == nil || rw.err != nil {
		return
	}
	_, rw.err = rw.mux.WriteChannel(sideband.ProgressMessage, []byte(s+"\n"))
	rw.flush()
}

// keepalive writes an empty primary-band packet if nothing was written for d.
func (rw *responseWriter) keepalive(d time.Duration) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.mux == nil || rw.err != nil || time.Since(rw.last) < d {
		return
	}
	_, rw.err = rw.w.Write(keepalivePkt)
	rw.flush()
}

// Finish writes the report-status (nil when the client did not ask for one)
// and the final flush-pkt.
func (rw *responseWriter) Finish(rs *packp.ReportStatus) error {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.err != nil {
		return rw.err
	}
	var buf bytes.Buffer
	if rs != nil {
		if err := rs.Encode(&buf); err != nil {
			return err
		}
	}
	if rw.mux == nil {
		_, rw.err = rw.w.Write(buf.Bytes())
	} else {
		if buf.Len() > 0 {
			_, rw.err = rw.mux.WriteChannel(sideband.PackData, buf.Bytes())
		}
		if rw.err == nil {
			rw.err = pktline.NewEncoder(rw.w).Flush()
		}
	}
	rw.flush()
	return rw.err
}

// keepAlive sends keepalives through rw every d until stop is closed.
func keepAlive(rw *responseWriter, d time.Duration, stop <-chan struct{}) {
	tick := time.NewTicker(d / 2)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			rw.keepalive(d)
		}
	}
}
