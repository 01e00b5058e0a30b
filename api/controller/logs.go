package controller

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-paas/strata/api"
)

// Logs serves the recent and live log lines of apps (api.LogService) from a
// bounded ring per app, optionally kept in files.
type Logs struct {
	now  func() time.Time
	find appFinder
	logs *logStore
}

var _ api.LogService = (*Logs)(nil)

// add keeps one line that arrived on the bus.
func (s *Logs) add(e api.LogEnvelope) { s.logs.add(e) }

// followBuffer is how many lines a following reader may lag before lines
// are dropped (and the drop reported).
const followBuffer = 512

// logStore keeps a bounded ring of recent lines per app, optionally backed
// by a per-app file, and fans live lines out to followers.
type logStore struct {
	mu       sync.Mutex
	size     int
	dir      string
	maxBytes int64
	log      *slog.Logger
	apps     map[string]*appLog
}

type appLog struct {
	ring  []api.LogEnvelope
	next  int // ring write position once full
	full  bool
	subs  map[*follower]struct{}
	file  *os.File
	bytes int64
}

type follower struct {
	ch      chan api.LogEnvelope
	dropped atomic.Int64
}

func newLogStore(size int, dir string, maxBytes int64, log *slog.Logger) *logStore {
	return &logStore{size: size, dir: dir, maxBytes: maxBytes, log: log, apps: map[string]*appLog{}}
}

// appLocked returns the log of an app (by ID), loading its files on first
// use.
func (s *logStore) appLocked(app string) *appLog {
	if l, ok := s.apps[app]; ok {
		return l
	}
	l := &appLog{subs: map[*follower]struct{}{}}
	s.apps[app] = l
	if s.dir != "" {
		for _, name := range []string{s.path(app) + ".1", s.path(app)} {
			s.load(l, name)
		}
	}
	return l
}

func (s *logStore) path(app string) string { return filepath.Join(s.dir, app+".log") }

func (s *logStore) load(l *appLog, name string) {
	f, err := os.Open(name)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e api.LogEnvelope
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			s.push(l, e)
		}
	}
}

func (s *logStore) push(l *appLog, e api.LogEnvelope) {
	if !l.full {
		l.ring = append(l.ring, e)
		if len(l.ring) == s.size {
			l.full = true
		}
		return
	}
	l.ring[l.next] = e
	l.next = (l.next + 1) % s.size
}

// recent returns up to n lines of l matching source, oldest first.
func (s *logStore) recent(l *appLog, source string, n int) []api.LogEnvelope {
	ordered := l.ring
	if l.full {
		ordered = append(append([]api.LogEnvelope{}, l.ring[l.next:]...), l.ring[:l.next]...)
	}
	var out []api.LogEnvelope
	for i := len(ordered) - 1; i >= 0 && len(out) < n; i-- {
		if sourceMatches(ordered[i].Source, source) {
			out = append(out, ordered[i])
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// sourceMatches reports whether a line's source is selected by a prefix
// ("app" selects "app/web/0"; "" selects everything).
func sourceMatches(source, prefix string) bool {
	return prefix == "" || source == prefix || strings.HasPrefix(source, prefix+"/")
}

// add stores a line under its app ID and hands it to followers. Lines of
// malformed app IDs are dropped (the ID becomes a file name).
func (s *logStore) add(e api.LogEnvelope) {
	if api.ValidateName("app id", e.AppID) != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.appLocked(e.AppID)
	s.push(l, e)
	s.write(l, e)
	for f := range l.subs {
		select {
		case f.ch <- e:
		default:
			f.dropped.Add(1)
		}
	}
}

func (s *logStore) write(l *appLog, e api.LogEnvelope) {
	if s.dir == "" {
		return
	}
	data, err := json.Marshal(e)
	if err != nil {
		return
	}
	data = append(data, '\n')
	name := s.path(e.AppID)
	if l.file != nil && l.bytes+int64(len(data)) > s.maxBytes {
		_ = l.file.Close()
		l.file = nil
		if err := os.Rename(name, name+".1"); err != nil {
			s.log.Warn("logs.rotate_failed", "app", e.App, "err", err)
		}
	}
	if l.file == nil {
		if err := os.MkdirAll(s.dir, 0o750); err != nil {
			s.log.Warn("logs.dir_failed", "err", err)
			return
		}
		f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
		if err != nil {
			s.log.Warn("logs.open_failed", "app", e.App, "err", err)
			return
		}
		st, _ := f.Stat()
		l.file, l.bytes = f, 0
		if st != nil {
			l.bytes = st.Size()
		}
	}
	n, err := l.file.Write(data)
	l.bytes += int64(n)
	if err != nil {
		s.log.Warn("logs.write_failed", "app", e.App, "err", err)
	}
}

// snapshotAndFollow returns recent lines and, with follow, a follower
// registered under the same lock so no line is missed or repeated.
func (s *logStore) snapshotAndFollow(app, source string, n int, follow bool) ([]api.LogEnvelope, *follower, func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.appLocked(app)
	lines := s.recent(l, source, n)
	if !follow {
		return lines, nil, func() {}
	}
	f := &follower{ch: make(chan api.LogEnvelope, followBuffer)}
	l.subs[f] = struct{}{}
	return lines, f, func() {
		s.mu.Lock()
		delete(l.subs, f)
		s.mu.Unlock()
	}
}

// Logs sends an app's recent lines (oldest first, filtered by source
// prefix), then with q.Follow live lines until ctx ends or fn fails. Lines
// dropped because the reader lagged are reported as a "strata" line.
// ENotFound for an unknown app.
func (s *Logs) Logs(ctx context.Context, q api.LogQuery, fn func(api.LogEnvelope) error) error {
	app, err := s.find.appByName(ctx, q.App, actRead)
	if err != nil {
		return err
	}
	n := q.Recent
	if n <= 0 {
		n = 100
	}
	lines, f, stop := s.logs.snapshotAndFollow(app.ID, q.Source, n, q.Follow)
	defer stop()
	for _, e := range lines {
		if err := fn(e); err != nil {
			return err
		}
	}
	if f == nil {
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-f.ch:
			if d := f.dropped.Swap(0); d > 0 {
				note := api.LogEnvelope{Time: s.now(), AppID: app.ID, App: q.App, Source: api.LogSourceStrata, Dropped: int(d),
					Line: fmt.Sprintf("%d log lines dropped — this reader was too slow", d)}
				if err := fn(note); err != nil {
					return err
				}
			}
			if !sourceMatches(e.Source, q.Source) {
				continue
			}
			if err := fn(e); err != nil {
				return err
			}
		}
	}
}
