package microvm

import (
	"io"
	"os"
	"sync"
	"time"

	"github.com/strata-paas/strata/deploy/driver/microvm/guest"
)

// frameSink is where a VM's output frames go: the spec's writers.
type frameSink struct {
	stdout, stderr io.Writer
}

// follower reads the frames QEMU appends to an instance's output file (the
// guest's output port) and delivers them: output to the sink, started and
// error to started, the exit record kept for exitResult.
type follower struct {
	path     string
	offset   int64
	resync   bool // started mid-file (a recovered VM): skip to a frame boundary
	sink     *frameSink
	started  chan<- error // nil after the first started or error frame
	onListen func(bool)   // the guest's port listens or not (KindListening)

	once     sync.Once
	done     chan struct{} // run has returned
	exitSeen chan struct{} // the exit record arrived

	mu   sync.Mutex
	exit *guest.Exit
	err  string
}

// pollInterval is how often the output file is read.
const pollInterval = 20 * time.Millisecond

// run delivers frames until exited is closed, then reads once more and
// returns (closing done).
func (f *follower) run(exited <-chan struct{}) {
	f.init()
	defer close(f.done)
	var pending []byte
	buf := make([]byte, 64<<10)
	file, _ := os.Open(f.path)
	defer func() {
		if file != nil {
			file.Close()
		}
	}()
	read := func() {
		if file == nil {
			if file, _ = os.Open(f.path); file == nil {
				return
			}
		}
		for {
			n, err := file.ReadAt(buf, f.offset)
			if n > 0 {
				f.offset += int64(n)
				pending = append(pending, buf[:n]...)
			}
			if err != nil || n == 0 {
				break
			}
		}
		for len(pending) > 0 {
			frames, used, err := guest.Parse(pending)
			for _, fr := range frames {
				f.deliver(fr)
			}
			if len(frames) > 0 {
				f.resync = false
			}
			pending = pending[used:]
			if err == nil {
				break
			}
			// Not a frame: skip a byte (expected only when a recovered VM's
			// file was opened mid-frame).
			pending = pending[1:]
		}
	}
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		select {
		case <-exited:
			read()
			return
		case <-t.C:
			read()
		}
	}
}

func (f *follower) init() {
	f.once.Do(func() { f.done, f.exitSeen = make(chan struct{}), make(chan struct{}) })
}

// exitRecorded returns a channel closed once the exit record has arrived.
func (f *follower) exitRecorded() <-chan struct{} {
	f.init()
	return f.exitSeen
}

// wait returns once run has returned.
func (f *follower) wait() {
	f.init()
	<-f.done
}

func (f *follower) deliver(fr guest.Frame) {
	switch fr.Kind {
	case guest.KindStdout:
		if f.sink.stdout != nil {
			_, _ = f.sink.stdout.Write(fr.Payload)
		}
	case guest.KindStderr:
		if f.sink.stderr != nil {
			_, _ = f.sink.stderr.Write(fr.Payload)
		}
	case guest.KindStarted:
		if f.started != nil {
			f.started <- nil
			f.started = nil
		}
	case guest.KindError:
		f.mu.Lock()
		f.err = string(fr.Payload)
		f.mu.Unlock()
		if f.started != nil {
			f.started <- &guestError{msg: string(fr.Payload)}
			f.started = nil
		}
	case guest.KindListening:
		if f.onListen != nil {
			f.onListen(string(fr.Payload) == "1")
		}
	case guest.KindExit:
		if e, err := guest.DecodeExit(fr.Payload); err == nil {
			f.mu.Lock()
			first := f.exit == nil
			f.exit = &e
			f.mu.Unlock()
			if first {
				close(f.exitSeen)
			}
		}
	}
}

func (f *follower) exitRecord() (guest.Exit, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.exit == nil {
		return guest.Exit{}, false
	}
	return *f.exit, true
}

func (f *follower) guestErr() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}
