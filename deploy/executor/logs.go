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

// publisher is the part of Bus the log shipper uses.
type publisher interface {
	Publish(subject string, v any) error
}

// logShipper moves log envelopes to the bus through a bounded queue. Writers
// never block: when the queue is full a line is dropped and counted per app,
// and a "strata" line saying how many were dropped is published later.
type logShipper struct {
	ch   chan shipItem
	pub  publisher
	mu   sync.Mutex
	lost map[appKey]int // lines dropped since last notice
}

// shipItem is a line to publish or, with fn set, a call made once every
// line queued before it has been published.
type shipItem struct {
	env api.LogEnvelope
	fn  func()
}

func newLogShipper(pub publisher, size int) *logShipper {
	return &logShipper{ch: make(chan shipItem, size), pub: pub, lost: map[appKey]int{}}
}

// after calls fn (on the shipper's goroutine) once the lines queued so far
// are published, or at once if ctx ends first.
func (s *logShipper) after(ctx context.Context, fn func()) {
	select {
	case s.ch <- shipItem{fn: fn}:
	case <-ctx.Done():
		fn()
	}
}

func (s *logShipper) send(env api.LogEnvelope) {
	select {
	case s.ch <- shipItem{env: env}:
	default:
		s.mu.Lock()
		s.lost[appKey{env.AppID, env.App}]++
		s.mu.Unlock()
	}
}

// run publishes queued lines until ctx ends.
func (s *logShipper) run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case it := <-s.ch:
			if it.fn != nil {
				it.fn()
				continue
			}
			_ = s.pub.Publish(api.SubjectLogs(it.env.AppID), it.env)
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
	s.lost = map[appKey]int{}
	s.mu.Unlock()
	for app, n := range lost {
		_ = s.pub.Publish(api.SubjectLogs(app.id), api.LogEnvelope{
			Time: time.Now().UTC(), AppID: app.id, App: app.name, Source: api.LogSourceStrata,
			Line: fmt.Sprintf("%d log lines dropped: the log stream could not keep up", n),
		})
	}
}

// lineWriter splits an instance's output stream into lines (at most
// MaxLogLine bytes each) and sends them as envelopes. It is an io.Writer safe
// for concurrent use.
// appKey names an app on the log stream: its ID keys the subject, its name
// is shown.
type appKey struct{ id, name string }

type lineWriter struct {
	ship   *logShipper
	appID  string
	app    string
	source string
	stream string
	tail   *lineTail // optional: keeps the last lines for crash events

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
	w.ship.send(api.LogEnvelope{Time: time.Now().UTC(), AppID: w.appID, App: w.app, Source: w.source, Stream: w.stream, Line: string(line)})
	if w.tail != nil {
		w.tail.add(string(line))
	}
}

// tailLines is how many last output lines a crash event carries, and
// tailLineBytes how much of each.
const (
	tailLines     = 10
	tailLineBytes = 512
)

// lineTail keeps the last tailLines output lines of an instance (stdout and
// stderr interleaved). It is safe for concurrent use.
type lineTail struct {
	mu    sync.Mutex
	lines []string
}

func (t *lineTail) add(line string) {
	if len(line) > tailLineBytes {
		line = line[:tailLineBytes] + "…"
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == tailLines {
		copy(t.lines, t.lines[1:])
		t.lines = t.lines[:tailLines-1]
	}
	t.lines = append(t.lines, line)
}

// take returns the kept lines, oldest first, and forgets them.
func (t *lineTail) take() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.lines
	t.lines = nil
	return out
}
