package router

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// h1Transport is the fast path to backends for requests without a body:
// it writes the request and reads the response on the calling goroutine over
// a pooled keep-alive connection. net/http's Transport spends two goroutines
// and several channel hand-offs per request on the same work, which
// profiling showed to be a large part of the router's own CPU. Requests with
// a body or an Upgrade go to the fallback Transport, which streams the body
// while reading an early response and hands upgraded connections over.
type h1Transport struct {
	dial            func(ctx context.Context, network, addr string) (net.Conn, error)
	fallback        *http.Transport
	responseTimeout time.Duration
	idleTimeout     time.Duration
	maxIdlePerHost  int
	now             func() time.Time

	mu   sync.Mutex
	idle map[string][]*backendConn // addr → idle connections, most recent last
}

type backendConn struct {
	conn     net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	addr     string
	idleAt   time.Time
	deadline time.Time // the read deadline set on conn, zero for none
}

var _ http.RoundTripper = (*h1Transport)(nil)

func (t *h1Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if (req.Body != nil && req.Body != http.NoBody) || req.ContentLength != 0 || req.Header.Get("Upgrade") != "" || req.URL.Scheme != "http" {
		return t.fallback.RoundTrip(req)
	}
	return t.send(req, req.URL.Host, nil)
}

// send is RoundTrip for a bodiless request to addr; head, when not nil, is
// the request head to write instead of req (which then only provides the
// method and context).
func (t *h1Transport) send(req *http.Request, addr string, head []byte) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		bc, reused, err := t.get(req.Context(), addr)
		if err != nil {
			return nil, err
		}
		resp, retryable, err := t.exchange(bc, req, head)
		if err == nil {
			return resp, nil
		}
		bc.conn.Close()
		if !retryable || !replayable(req) || req.Context().Err() != nil {
			return nil, err
		}
		// A kept-alive connection the backend had closed fails before any
		// response byte: send the (bodiless, idempotent) request again on a
		// new connection, as net/http's Transport does.
		if !reused || attempt > 0 {
			return nil, &unansweredError{err}
		}
	}
}

// unansweredError is a bodiless idempotent request whose connection the
// backend closed before any byte of a response, on a new connection (or
// again on one after a kept-alive one): the backend may never have seen it
// (a connection still in the listen queue of a server shutting down) or
// may have died of it. The proxy sends it once more (see roundTrip).
type unansweredError struct{ err error }

func (e *unansweredError) Error() string { return e.err.Error() }
func (e *unansweredError) Unwrap() error { return e.err }

func replayable(req *http.Request) bool {
	switch req.Method {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	return false
}

// exchange writes req (or head) on bc and reads the response headers.
// retryable reports that nothing of a response was read.
func (t *h1Transport) exchange(bc *backendConn, req *http.Request, head []byte) (resp *http.Response, retryable bool, err error) {
	if head != nil {
		_, err = bc.bw.Write(head)
	} else {
		err = req.Write(bc.bw)
	}
	if err != nil {
		return nil, true, err
	}
	if err := bc.bw.Flush(); err != nil {
		return nil, true, err
	}
	// The request context ending closes the connection, which aborts a
	// read of the response headers or, later, of the body.
	ctx := req.Context()
	stop := context.AfterFunc(ctx, func() { bc.conn.Close() })
	// The read deadline is moved only when the one set is more than a
	// sixteenth of the timeout older: on a busy connection that spares a
	// timer change per request, and a response still gets at least 15/16 of
	// its time.
	if d := t.now().Add(t.responseTimeout); bc.deadline.Before(d.Add(-t.responseTimeout / 16)) {
		_ = bc.conn.SetReadDeadline(d)
		bc.deadline = d
	}
	if _, err := bc.br.Peek(1); err != nil {
		stop()
		return nil, !isTimeout(err) && ctx.Err() == nil, err
	}
	for {
		if r, ok := readSimpleResponse(bc.br, req); ok {
			resp = r
			break
		}
		resp, err = http.ReadResponse(bc.br, req)
		if err != nil {
			stop()
			return nil, false, err
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		// 1xx (e.g. 103 Early Hints) before the final response: dropped.
	}
	if ctx.Err() != nil {
		stop()
		return nil, false, ctx.Err()
	}
	if resp.Body != http.NoBody && (resp.ContentLength < 0 || int64(bc.br.Buffered()) < resp.ContentLength) {
		// The body is read from the connection later: without the deadline,
		// as net/http bounds only the response head.
		_ = bc.conn.SetReadDeadline(time.Time{})
		bc.deadline = time.Time{}
	}
	keep := !resp.Close && !req.Close && resp.StatusCode != http.StatusSwitchingProtocols
	resp.Body = &backendBody{rc: resp.Body, bc: bc, t: t, keep: keep, ctx: ctx, eof: resp.Body == http.NoBody, stop: stop}
	return resp, false, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// get returns an idle connection to addr or dials one.
func (t *h1Transport) get(ctx context.Context, addr string) (bc *backendConn, reused bool, err error) {
	now := t.now()
	t.mu.Lock()
	for {
		list := t.idle[addr]
		if len(list) == 0 {
			break
		}
		bc = list[len(list)-1]
		list[len(list)-1] = nil
		t.idle[addr] = list[:len(list)-1]
		if now.Sub(bc.idleAt) < t.idleTimeout {
			t.mu.Unlock()
			return bc, true, nil
		}
		bc.conn.Close()
	}
	t.mu.Unlock()
	c, err := t.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	return &backendConn{conn: c, br: bufio.NewReaderSize(c, 16<<10), bw: bufio.NewWriterSize(c, 8<<10), addr: addr}, false, nil
}

// put returns bc to the idle pool, or closes it when the pool is full.
func (t *h1Transport) put(bc *backendConn) {
	bc.idleAt = t.now()
	t.mu.Lock()
	if len(t.idle[bc.addr]) < t.maxIdlePerHost {
		t.idle[bc.addr] = append(t.idle[bc.addr], bc)
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	bc.conn.Close()
}

// CloseIdleConnections closes every idle connection.
func (t *h1Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = map[string][]*backendConn{}
	t.mu.Unlock()
	for _, list := range idle {
		for _, bc := range list {
			bc.conn.Close()
		}
	}
	t.fallback.CloseIdleConnections()
}

// backendBody returns the connection to the pool once the body was read to
// its end, and closes it otherwise. The request context ending aborts a
// read in progress.
type backendBody struct {
	rc   io.ReadCloser
	bc   *backendConn
	t    *h1Transport
	ctx  context.Context
	stop func() bool // stops closing the connection when ctx ends
	keep bool
	eof  bool
	done bool
}

func (b *backendBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, errors.New("read on closed response body")
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
	} else if err != nil && b.ctx.Err() != nil {
		err = b.ctx.Err()
	}
	return n, err
}

func (b *backendBody) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	if !b.stop() {
		return nil // the context ended and closed the connection
	}
	if b.eof && b.keep {
		b.t.put(b.bc)
		return nil
	}
	return b.bc.conn.Close()
}

// readSimpleResponse reads the response head in br when it is a plain one —
// HTTP/1.1, a final status, CRLF line ends, valid names and values, a single
// Content-Length or a status without a body, no Transfer-Encoding or Trailer
// — and returns it with its body limited to the Content-Length. ok is false,
// with nothing consumed, for anything else (then http.ReadResponse reads it).
// FuzzSimpleResponse checks it against http.ReadResponse.
func readSimpleResponse(br *bufio.Reader, req *http.Request) (resp *http.Response, ok bool) {
	b, _ := br.Peek(br.Buffered())
	head := headEnd(b)
	if head == nil {
		return nil, false
	}
	s := string(head)
	line, rest, found := cutCRLF(s)
	if !found || len(line) < 12 || line[:9] != "HTTP/1.1 " || (len(line) > 12 && line[12] != ' ') {
		return nil, false
	}
	code := 0
	for i := 9; i < 12; i++ {
		c := line[i]
		if c < '0' || c > '9' {
			return nil, false
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 || code > 599 {
		return nil, false
	}
	status := line[9:]
	for i := 12; i < len(line); i++ {
		if c := line[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return nil, false
		}
	}
	n := 0
	for i := 0; i < len(rest); i++ {
		if rest[i] == '\n' {
			n++
		}
	}
	h := make(http.Header, n)
	cl := int64(-1)
	closeConn := false
	var keyBuf [64]byte
	vals := make([]string, 0, n)
	for {
		line, rest, found = cutCRLF(rest)
		if !found {
			return nil, false
		}
		if line == "" {
			break
		}
		key, value, ok := fieldLine(line, keyBuf[:0])
		if !ok {
			return nil, false
		}
		switch key {
		case "Transfer-Encoding", "Trailer":
			return nil, false
		case "Content-Length":
			if cl >= 0 || value == "" || len(value) > 18 {
				return nil, false
			}
			v := int64(0)
			for i := 0; i < len(value); i++ {
				c := value[i]
				if c < '0' || c > '9' {
					return nil, false
				}
				v = v*10 + int64(c-'0')
			}
			cl = v
		case "Connection":
			if containsToken([]string{value}, "close") {
				closeConn = true
			}
		}
		// One backing array for all values: one allocation, not one per header.
		if old, dup := h[key]; dup {
			h[key] = append(old, value)
		} else {
			vals = append(vals, value)
			h[key] = vals[len(vals)-1 : len(vals) : len(vals)]
		}
	}
	if closeConn {
		delete(h, "Connection") // as http.ReadResponse does
	}
	noBody := req.Method == http.MethodHead || code == http.StatusNoContent || code == http.StatusNotModified
	if cl < 0 && !noBody {
		return nil, false // read to the connection's end: net/http's business
	}
	if code == http.StatusNoContent && cl > 0 {
		return nil, false
	}
	_, _ = br.Discard(len(head))
	resp = &http.Response{
		Status:        status,
		StatusCode:    code,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		ContentLength: cl,
		Close:         closeConn,
		Request:       req,
		Body:          http.NoBody,
	}
	if noBody {
		if req.Method != http.MethodHead {
			resp.ContentLength = 0 // 204, 304; a HEAD response keeps the length it names
		}
		return resp, true
	}
	if cl > 0 {
		resp.Body = &limitedBody{r: br, n: cl}
	}
	return resp, true
}

// limitedBody is a response body of a known length read from the backend
// connection's buffer; a short read is io.ErrUnexpectedEOF, as net/http's.
type limitedBody struct {
	r *bufio.Reader
	n int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.r.Read(p)
	b.n -= int64(n)
	if err == io.EOF {
		return n, io.ErrUnexpectedEOF
	}
	if b.n == 0 && err == nil {
		err = io.EOF
	}
	return n, err
}

func (b *limitedBody) Close() error { return nil }
