package guest

import (
	"encoding/binary"
	"errors"
	"io"
	"sync"
)

// Frame kinds on the output port. Every frame is one kind byte, a 4-byte
// big-endian payload length and the payload.
const (
	KindStdout  byte = '1' // a chunk of the command's stdout
	KindStderr  byte = '2' // a chunk of the command's stderr
	KindStarted byte = 'S' // the command started; payload empty
	KindExit    byte = 'X' // the command ended; payload is an Exit encoded by EncodeExit
	KindError   byte = 'E' // the init failed before or while running the command; payload is the reason
	// KindListening says whether something listens on the instance's port
	// in the guest: payload "1" or "0", sent when it changes and every
	// ListenReport.
	KindListening byte = 'L'
)

// MaxPayload bounds one frame's payload; longer writes are split.
const MaxPayload = 32 << 10

// Frame is one record of the output port.
type Frame struct {
	Kind    byte
	Payload []byte
}

// Writer writes frames to an underlying writer. It is safe for concurrent
// use: each frame is written whole.
type Writer struct {
	mu sync.Mutex
	w  io.Writer
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// WriteFrame writes one frame of kind with payload p, split into several
// when p is longer than MaxPayload.
func (fw *Writer) WriteFrame(kind byte, p []byte) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	for first := true; first || len(p) > 0; first = false {
		n := min(len(p), MaxPayload)
		buf := make([]byte, 5+n)
		buf[0] = kind
		binary.BigEndian.PutUint32(buf[1:5], uint32(n))
		copy(buf[5:], p[:n])
		if _, err := fw.w.Write(buf); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// ErrBadFrame is returned by Parse for bytes that are not a frame.
var ErrBadFrame = errors.New("malformed frame on the guest's output port")

// Parse reads the complete frames at the start of b and returns them with
// the number of bytes they used; a trailing partial frame is left for the
// next call.
func Parse(b []byte) ([]Frame, int, error) {
	var out []Frame
	used := 0
	for len(b)-used >= 5 {
		k := b[used]
		switch k {
		case KindStdout, KindStderr, KindStarted, KindExit, KindError, KindListening:
		default:
			return out, used, ErrBadFrame
		}
		n := int(binary.BigEndian.Uint32(b[used+1 : used+5]))
		if n > MaxPayload {
			return out, used, ErrBadFrame
		}
		if len(b)-used-5 < n {
			break
		}
		out = append(out, Frame{Kind: k, Payload: append([]byte(nil), b[used+5:used+5+n]...)})
		used += 5 + n
	}
	return out, used, nil
}
