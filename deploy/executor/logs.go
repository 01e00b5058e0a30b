package executor

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/strata-paas/strata/api"
)

// MaxLogLine is the longest log line published; longer lines are split.
const MaxLogLine = 16 << 10

// publisher is the part of *bus.Conn the executor uses.
type publisher interface {
	Publish(subject string, v any) error
}

// logShipper moves log envelopes to the bus through a bounded queue. Writers
// never block: when the queue is full a line is dropped and counted per app,
// and a "strata" line saying how many were dropped is published later.
type logShipper struct {
	ch   chan api.LogEnvelope
	pub  publisher
	mu   sync.Mutex
	lost map[string]int // app name → lines dropped since last notice
}

func newLogShipper(pub publisher, size int) *logShipper {
	return &logShipper{ch: make(chan api.LogEnvelope, size), pub: pub, lost: map[string]int{}}
}

func (s *logShipper) send(env api.LogEnvelope) {
	select {
	case s.ch <- env:
	default:
		s.mu.Lock()
		s.lost[env.App]++
		s.mu.Unlock()
	}
}

// run publishes queued lines until ctx ends.
func (s *logShipper) run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case env := <-s.ch:
			_ = s.pub.Publish(api.SubjectLogs(env.App), env)
			if len(s.ch) == 0 {
				s.noticeDrops()
			}
		case <-tick.C:
			s.noticeDrops()
		case <-ctx.Done():
			return
		}
	}
}

func (s *logShipper) noticeDrops() {
	s.mu.Lock()
	lost := s.lost
	if len(lost) == 0 {
		s.mu.Unlock()
		return
	}
	s.lost = map[string]int{}
	s.mu.Unlock()
	for app, n := range lost {
		_ = s.pub.Publish(api.SubjectLogs(app), api.LogEnvelope{
			Time: time.Now().UTC(), App: app, Source: api.LogSourceStrata,
			Line: fmt.Sprintf("%d log lines dropped: the log stream could not keep up", n),
		})
	}
}

// lineWriter splits an instance's output stream into lines (at most
// MaxLogLine bytes each) and sends them as envelopes. It is an io.Writer safe
// for concurrent use.
type lineWriter struct {
	ship   *logShipper
	app    string
	source string
	stream string

	mu  sync.Mutex
	buf []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.buf = append(w.buf, p...)
			for len(w.buf) > MaxLogLine {
				w.emit(w.buf[:MaxLogLine])
				w.buf = append(w.buf[:0], w.buf[MaxLogLine:]...)
			}
			break
		}
		w.buf = append(w.buf, p[:i]...)
		p = p[i+1:]
		for len(w.buf) > MaxLogLine {
			w.emit(w.buf[:MaxLogLine])
			w.buf = append(w.buf[:0], w.buf[MaxLogLine:]...)
		}
		w.emit(w.buf)
		w.buf = w.buf[:0]
	}
	return n, nil
}

// Flush sends a final line that had no newline.
func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(w.buf)
		w.buf = w.buf[:0]
	}
}

func (w *lineWriter) emit(line []byte) {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	w.ship.send(api.LogEnvelope{Time: time.Now().UTC(), App: w.app, Source: w.source, Stream: w.stream, Line: string(line)})
}
