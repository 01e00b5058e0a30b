package router

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The router's own HTTP/1.1 serving loop (plaintext only).
//
// net/http.Server spends, per request on a keep-alive connection, a
// background read goroutine (one more read system call and two deadline
// changes to stop it), a cancellable context, a copy of the response header
// map and its general request parsing. For the requests a PaaS router sees
// most — GET or HEAD, no body, no Upgrade, a plain header block — h1Conn
// does that work itself on the connection's goroutine: it reads the header
// block into a pooled buffer, builds the http.Request from one string, calls
// the handler with a writer that writes the response head and a small body
// in one write, and goes on with the next request.
//
// Anything else is handed to net/http: at the first request that is not one
// of those (a body, Content-Length or Transfer-Encoding, Upgrade, Expect,
// HTTP/1.0, obs-fold, a bare LF, an invalid name or value, a header block
// larger than the read buffer, ...), the connection with the bytes read so
// far goes to an http.Server through handoffListener, and stays there. So
// every malformed or hostile request is still judged by net/http and the
// framing guard, exactly as before; the guard wraps the connection from its
// first byte either way.
//
// The request context is the connection's, ended when the server drains
// past its grace; a client that goes away is noticed only while a request
// is held (watchClient), not during an exchange with a backend, which its
// response timeout bounds.

// h1ReadSize is the read buffer a connection keeps while it is open (as
// net/http's); header blocks larger than it go to net/http. The write buffer
// and the buffer for a body held back are taken from pools for each response
// only, so that an idle keep-alive connection holds no more than net/http's.
const (
	h1ReadSize = 4 << 10
	h1BufSize  = 8 << 10
)

var (
	h1Readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, h1ReadSize) }}
	h1Writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, h1BufSize) }}
	h1Bodies  = sync.Pool{New: func() any { b := make([]byte, 0, h1BufSize); return &b }}
)

// h1Loop serves plaintext connections accepted by Server.
type h1Loop struct {
	s       *Server
	handler http.Handler
	handoff *handoffListener

	mu      sync.Mutex
	conns   map[*h1Conn]struct{}
	closing bool
	wg      sync.WaitGroup
}

type h1Conn struct {
	loop   *h1Loop
	g      *guardConn
	br     *bufio.Reader
	bw     *bufio.Writer
	ctx    context.Context
	cancel context.CancelFunc
	remote string
	idle   atomic.Bool // waiting for a request with nothing read of it

	w h1Writer

	idleSet        time.Time // when the idle read deadline was last set
	headerDeadline bool      // the read deadline set is ReadHeaderTimeout's (or the watcher's)

	watching  bool
	watchDone chan struct{}
	aborted   atomic.Bool
}

type h1ConnKey struct{}

func (l *h1Loop) serveConn(base context.Context, c net.Conn) {
	defer l.wg.Done()
	g := newGuardConn(c)
	hc := &h1Conn{loop: l, g: g, remote: c.RemoteAddr().String()}
	ctx := context.WithValue(base, guardKey{}, g)
	hc.ctx, hc.cancel = context.WithCancel(context.WithValue(ctx, h1ConnKey{}, hc))
	defer hc.cancel()
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		c.Close()
		return
	}
	l.conns[hc] = struct{}{}
	l.mu.Unlock()
	hc.br = h1Readers.Get().(*bufio.Reader)
	hc.br.Reset(g)
	handedOff := hc.serve()
	l.mu.Lock()
	delete(l.conns, hc)
	l.mu.Unlock()
	if handedOff {
		buf, _ := hc.br.Peek(hc.br.Buffered())
		pc := &prefixConn{guardConn: g, prefix: bytes.Clone(buf)}
		hc.release()
		if !l.handoff.push(pc) {
			c.Close()
		}
		return
	}
	hc.release()
	c.Close()
}

func (hc *h1Conn) release() {
	hc.br.Reset(nil)
	h1Readers.Put(hc.br)
	hc.br = nil
}

// serve runs requests until the connection ends (false) or a request needs
// net/http (true; nothing of it was consumed).
func (hc *h1Conn) serve() (handoff bool) {
	cfg := &hc.loop.s.cfg
	for {
		if hc.br.Buffered() == 0 {
			// The order matters: shutdown sets closing, then ends the reads
			// of idle connections.
			// The idle deadline is moved at most once per sixteenth of
			// IdleTimeout (at most once a second) on a busy connection.
			hc.idle.Store(true)
			if now := time.Now(); hc.headerDeadline || now.Sub(hc.idleSet) > min(time.Second, cfg.IdleTimeout/16) {
				_ = hc.g.SetReadDeadline(now.Add(cfg.IdleTimeout))
				hc.idleSet, hc.headerDeadline = now, false
			}
			if hc.loop.isClosing() {
				return false
			}
			_, err := hc.br.Peek(1)
			hc.idle.Store(false)
			if err != nil {
				return false
			}
		}
		head, complete := findHead(hc.br)
		if !complete {
			// More of the header block is to come: it must come within
			// ReadHeaderTimeout (slowloris).
			_ = hc.g.SetReadDeadline(time.Now().Add(cfg.ReadHeaderTimeout))
			hc.headerDeadline = true
			var err error
			if head, err = peekHead(hc.br); err != nil {
				return false // timeout, EOF or reset: closed without an answer, as net/http does
			}
		}
		if head == nil || len(head) > cfg.MaxHeaderBytes {
			return true
		}
		if at := hc.g.stopAt.Load(); at != 0 && hc.g.served.Load()+1 >= at {
			return true
		}
		req, ok := parseSimpleRequest(head)
		if !ok {
			return true
		}
		_, _ = hc.br.Discard(len(head))
		req.RemoteAddr = hc.remote
		req = req.WithContext(hc.ctx)
		if !hc.run(req) {
			return false
		}
	}
}

// run serves one request; false: the connection must be closed.
func (hc *h1Conn) run(req *http.Request) (keep bool) {
	hc.bw = h1Writers.Get().(*bufio.Writer)
	hc.bw.Reset(hc.g)
	w := &hc.w
	w.reset(hc, req)
	defer func() {
		if hc.watching {
			hc.stopWatch()
		}
		w.releaseBody()
		hc.bw.Reset(nil)
		h1Writers.Put(hc.bw)
		hc.bw = nil
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				hc.loop.s.log.Error("router.handler_panic", "panic", v)
			}
			keep = false
		}
	}()
	hc.loop.handler.ServeHTTP(w, req)
	if hc.ctx.Err() != nil {
		return false // the client went away while its request was held, or the server gave up draining
	}
	if err := w.finish(); err != nil {
		return false
	}
	return !w.closeAfter && !hc.loop.isClosing()
}

// watchClient notices a client going away while its request waits (held
// requests): it reads on the connection until the returned stop is called
// and ends the request's context if the read fails. Bytes read (a next,
// pipelined request) stay buffered. A no-op for requests net/http serves,
// whose context net/http ends itself.
func watchClient(r *http.Request) {
	hc, ok := r.Context().Value(h1ConnKey{}).(*h1Conn)
	if !ok || hc.watching || hc.br.Buffered() > 0 {
		return
	}
	hc.watching = true
	hc.aborted.Store(false)
	hc.watchDone = make(chan struct{})
	hc.headerDeadline = true // the next request sets its own
	_ = hc.g.SetReadDeadline(time.Time{})
	go func() {
		defer close(hc.watchDone)
		if _, err := hc.br.Peek(1); err != nil && !hc.aborted.Load() {
			hc.cancel()
		}
	}()
}

func (hc *h1Conn) stopWatch() {
	hc.watching = false
	hc.aborted.Store(true)
	_ = hc.g.SetReadDeadline(time.Unix(1, 0))
	<-hc.watchDone
}

func (l *h1Loop) isClosing() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closing
}

// shutdown stops new requests: idle connections are closed now, busy ones
// after their current response.
func (l *h1Loop) shutdown() {
	l.mu.Lock()
	l.closing = true
	for hc := range l.conns {
		if hc.idle.Load() {
			_ = hc.g.SetReadDeadline(time.Unix(1, 0))
		}
	}
	l.mu.Unlock()
}

// closeAll closes every connection left (the drain's grace is over).
func (l *h1Loop) closeAll() {
	l.mu.Lock()
	for hc := range l.conns {
		hc.cancel()
		hc.g.Close()
	}
	l.mu.Unlock()
}

// findHead returns the header block if it is complete in br's buffer (or
// nil, true if it cannot fit in the buffer), without reading.
func findHead(br *bufio.Reader) (head []byte, complete bool) {
	b, _ := br.Peek(br.Buffered())
	if h := headEnd(b); h != nil {
		return h, true
	}
	return nil, br.Buffered() >= br.Size()
}

// peekHead returns the request's header block (through the blank line)
// without consuming it, nil if it does not fit in the buffer.
func peekHead(br *bufio.Reader) ([]byte, error) {
	for {
		b, _ := br.Peek(br.Buffered())
		if h := headEnd(b); h != nil {
			return h, nil
		}
		if br.Buffered() >= br.Size() {
			return nil, nil
		}
		if _, err := br.Peek(br.Buffered() + 1); err != nil {
			return nil, err
		}
	}
}

// headEnd returns b through the end of its first header block, nil if b
// holds no complete one.
func headEnd(b []byte) []byte {
	// The block ends at the first empty line, CRLF or (for net/http, which
	// accepts it) bare LF.
	for i := bytes.IndexByte(b, '\n'); i >= 0; {
		switch {
		case i+1 < len(b) && b[i+1] == '\n':
			return b[:i+2]
		case i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n':
			return b[:i+3]
		}
		j := bytes.IndexByte(b[i+1:], '\n')
		if j < 0 {
			return nil
		}
		i += 1 + j
	}
	return nil
}

// commonKeys interns canonical header names.
var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"Accept", "Accept-Encoding", "Accept-Language", "Authorization", "Cache-Control",
		"Connection", "Cookie", "Host", "If-Modified-Since", "If-None-Match", "Origin", "Referer", "User-Agent",
		"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip", "X-Request-Id", "Sec-Fetch-Mode",
		"Sec-Fetch-Site", "Sec-Fetch-Dest", "Dnt", "Priority", "Te", "Keep-Alive", "Range", "If-Range"} {
		m[k] = k
	}
	return m
}()

// parseSimpleRequest parses head (a complete header block) into a request
// when it is one the loop serves itself: GET or HEAD, HTTP/1.1, an
// origin-form target, CRLF line ends, valid header names and values, exactly
// one plain Host, and none of Content-Length, Transfer-Encoding, Upgrade,
// Expect, Pragma or a Connection other than keep-alive/close. ok is false
// for anything else (then net/http reads the request).
func parseSimpleRequest(head []byte) (r *http.Request, ok bool) {
	s := string(head) // every name and value below is a substring of s
	line, rest, found := cutCRLF(s)
	if !found {
		return nil, false
	}
	var method string
	switch {
	case len(line) > 4 && line[:4] == "GET ":
		method, line = http.MethodGet, line[4:]
	case len(line) > 5 && line[:5] == "HEAD ":
		method, line = http.MethodHead, line[5:]
	default:
		return nil, false
	}
	const proto = " HTTP/1.1"
	if len(line) <= len(proto) || line[len(line)-len(proto):] != proto {
		return nil, false
	}
	target := line[:len(line)-len(proto)]
	if target[0] != '/' {
		return nil, false
	}
	for i := 0; i < len(target); i++ {
		if c := target[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return nil, false
		}
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, false
	}
	n := 0
	for i := 0; i < len(rest); i++ {
		if rest[i] == '\n' {
			n++
		}
	}
	h := make(http.Header, n)
	var host string
	hosts := 0
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
		case "Host":
			hosts++
			host = value
			continue
		case "Content-Length", "Transfer-Encoding", "Upgrade", "Expect", "Pragma", "Http2-Settings":
			return nil, false
		case "Connection":
			switch {
			case equalFoldString(value, "close"):
				closeConn = true
			case equalFoldString(value, "keep-alive"):
			default:
				return nil, false
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
	if hosts != 1 || host == "" || !plainHost(host) {
		return nil, false
	}
	r = &http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Body:       http.NoBody,
		Host:       host,
		RequestURI: target,
		Close:      closeConn,
	}
	return r, true
}

func cutCRLF(s string) (line, rest string, ok bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			if i == 0 || s[i-1] != '\r' {
				return "", "", false // a bare LF: net/http's business
			}
			return s[:i-1], s[i+1:], true
		}
		if s[i] == '\r' && (i+1 == len(s) || s[i+1] != '\n') {
			return "", "", false
		}
	}
	return "", "", false
}

func isTokenByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

func trimOWSString(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// canonicalKey is textproto.CanonicalMIMEHeaderKey for a valid token, without
// allocating for canonical or common names.
// fieldLine splits a header field line "Name: value" of a request or
// response head: a token name, the value without surrounding whitespace and
// free of control characters, and the canonical key (built in buf when the
// name is not canonical). ok is false for anything else.
func fieldLine(line string, buf []byte) (key, value string, ok bool) {
	colon := -1
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c == ':' {
			colon = i
			break
		}
		if !isTokenByte(c) {
			return "", "", false
		}
	}
	if colon <= 0 {
		return "", "", false
	}
	value = trimOWSString(line[colon+1:])
	for i := 0; i < len(value); i++ {
		if c := value[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return "", "", false
		}
	}
	return canonicalKey(line[:colon], buf), value, true
}

func canonicalKey(k string, buf []byte) string {
	canonical := true
	upper := true
	for i := 0; i < len(k); i++ {
		c := k[i]
		if upper && c >= 'a' && c <= 'z' || !upper && c >= 'A' && c <= 'Z' {
			canonical = false
			break
		}
		upper = c == '-'
	}
	if canonical {
		return k
	}
	buf = append(buf, k...)
	upper = true
	for i, c := range buf {
		if upper && c >= 'a' && c <= 'z' {
			buf[i] = c - ('a' - 'A')
		} else if !upper && c >= 'A' && c <= 'Z' {
			buf[i] = c + ('a' - 'A')
		}
		upper = c == '-'
	}
	if ck, ok := commonKeys[string(buf)]; ok {
		return ck
	}
	return string(buf)
}

// h1Writer is the http.ResponseWriter of h1Conn. A body that fits in the
// buffer before the handler returns is sent with a Content-Length; longer or
// flushed bodies without one are chunked.
type h1Writer struct {
	hc          *h1Conn
	req         *http.Request
	header      http.Header
	status      int
	wroteHeader bool // the final status is set
	committed   bool // the head is in bw
	chunked     bool
	noBody      bool // HEAD, 1xx, 204, 304
	closeAfter  bool
	trailers    []string // declared in the Trailer header
	body        []byte   // held back until the head is committed
	bodyBuf     *[]byte  // body's pooled buffer
	buf         []byte   // the head being built
	err         error
}

func (w *h1Writer) reset(hc *h1Conn, req *http.Request) {
	buf := w.buf[:0]
	h := w.header
	if h == nil {
		h = make(http.Header, 16)
	} else {
		clear(h)
	}
	*w = h1Writer{hc: hc, req: req, header: h, buf: buf, closeAfter: req.Close}
}

func (w *h1Writer) Header() http.Header { return w.header }

func (w *h1Writer) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic("invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code < 200 {
		// Informational: sent at once, the final status follows.
		w.buf = appendStatusLine(w.buf[:0], code)
		w.buf = appendHeaders(w.buf, w.header, nil)
		w.buf = append(w.buf, "\r\n"...)
		_, _ = w.hc.bw.Write(w.buf)
		_ = w.hc.bw.Flush()
		return
	}
	w.wroteHeader, w.status = true, code
	w.noBody = w.req.Method == http.MethodHead || code == http.StatusNoContent || code == http.StatusNotModified
	if v := w.header["Trailer"]; len(v) > 0 {
		for _, f := range v {
			for k := range splitComma(f) {
				w.trailers = append(w.trailers, http.CanonicalHeaderKey(k))
			}
		}
	}
}

func splitComma(s string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for len(s) > 0 {
			i := 0
			for i < len(s) && s[i] != ',' {
				i++
			}
			if t := trimOWSString(s[:i]); t != "" && !yield(t) {
				return
			}
			if i == len(s) {
				return
			}
			s = s[i+1:]
		}
	}
}

func (w *h1Writer) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.noBody {
		if w.req.Method == http.MethodHead {
			return len(p), nil
		}
		return 0, http.ErrBodyNotAllowed
	}
	if !w.committed {
		if len(w.body)+len(p) <= h1BufSize {
			if w.bodyBuf == nil {
				w.bodyBuf = h1Bodies.Get().(*[]byte)
				w.body = (*w.bodyBuf)[:0]
			}
			w.body = append(w.body, p...)
			return len(p), nil
		}
		if err := w.commit(false); err != nil {
			return 0, err
		}
	}
	return w.writeBody(p)
}

func (w *h1Writer) writeBody(p []byte) (int, error) {
	bw := w.hc.bw
	if len(p) == 0 {
		return 0, nil
	}
	if w.chunked {
		bw.WriteString(strconv.FormatInt(int64(len(p)), 16))
		bw.WriteString("\r\n")
	}
	n, err := bw.Write(p)
	if err == nil && w.chunked {
		_, err = bw.WriteString("\r\n")
	}
	if err != nil {
		w.err = err
	}
	return n, err
}

func (w *h1Writer) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		if w.commit(false) != nil {
			return
		}
	}
	if err := w.hc.bw.Flush(); err != nil {
		w.err = err
	}
}

// commit writes the head into bw, then the body held back. final: the
// handler returned, so the held-back body is the whole body.
func (w *h1Writer) commit(final bool) error {
	w.committed = true
	h := w.header
	_, hasCL := h["Content-Length"]
	switch {
	case w.noBody || w.status == http.StatusNoContent || w.status == http.StatusNotModified:
		// A Content-Length the handler set is kept, as net/http keeps it.
		if w.status != http.StatusNoContent && w.status != http.StatusNotModified && !hasCL && final && len(w.body) > 0 {
			h["Content-Length"] = []string{strconv.Itoa(len(w.body))}
		}
	case hasCL:
	case final && len(w.trailers) == 0:
		h["Content-Length"] = []string{strconv.Itoa(len(w.body))}
	default:
		w.chunked = true
		delete(h, "Content-Length")
	}
	if _, ok := h["Content-Type"]; !ok && !w.noBody && len(w.body) > 0 {
		h["Content-Type"] = []string{http.DetectContentType(w.body)}
	}
	if _, ok := h["Date"]; !ok {
		h["Date"] = []string{time.Now().UTC().Format(http.TimeFormat)}
	}
	if c := h["Connection"]; len(c) > 0 && containsToken(c, "close") {
		w.closeAfter = true
	}
	delete(h, "Connection")
	delete(h, "Transfer-Encoding")
	b := appendStatusLine(w.buf[:0], w.status)
	b = appendHeaders(b, h, w.trailers)
	if w.chunked {
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	if w.closeAfter {
		b = append(b, "Connection: close\r\n"...)
	}
	b = append(b, "\r\n"...)
	w.buf = b
	if _, err := w.hc.bw.Write(b); err != nil {
		w.err = err
		return err
	}
	if len(w.body) > 0 && !w.noBody {
		body := w.body
		w.body = w.body[:0]
		if _, err := w.writeBody(body); err != nil {
			return err
		}
	}
	return nil
}

// finish ends the response after the handler returned and sends it.
func (w *h1Writer) finish() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return w.err
	}
	if !w.committed {
		if err := w.commit(true); err != nil {
			return err
		}
	}
	bw := w.hc.bw
	if w.chunked {
		bw.WriteString("0\r\n")
		for _, k := range w.trailers {
			for _, v := range w.header[k] {
				w.buf = appendHeader(w.buf[:0], k, v)
				bw.Write(w.buf)
			}
		}
		for k, vv := range w.header {
			if name, ok := cutPrefix(k, http.TrailerPrefix); ok {
				for _, v := range vv {
					w.buf = appendHeader(w.buf[:0], http.CanonicalHeaderKey(name), v)
					bw.Write(w.buf)
				}
			}
		}
		bw.WriteString("\r\n")
	}
	if err := bw.Flush(); err != nil {
		w.err = err
		return err
	}
	return nil
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return s, false
}

func appendStatusLine(b []byte, code int) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	if t := http.StatusText(code); t != "" {
		b = append(b, t...)
	} else {
		b = append(b, "status code "...)
		b = strconv.AppendInt(b, int64(code), 10)
	}
	return append(b, "\r\n"...)
}

// appendHeaders appends h sorted by name as net/http writes it, without the
// trailers (sent after the body) and TrailerPrefix keys; values with CR or
// LF are dropped as net/http drops them... (it replaces them with spaces).
func appendHeaders(b []byte, h http.Header, trailers []string) []byte {
	var keysBuf [32]string
	keys := keysBuf[:0]
	for k := range h {
		if _, ok := cutPrefix(k, http.TrailerPrefix); ok || slices.Contains(trailers, k) {
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range h[k] {
			b = append(b, k...)
			b = append(b, ": "...)
			for i := 0; i < len(v); i++ {
				c := v[i]
				if c == '\r' || c == '\n' {
					c = ' '
				}
				b = append(b, c)
			}
			b = append(b, "\r\n"...)
		}
	}
	return b
}

// prefixConn is a connection handed to net/http with the bytes h1Conn had
// read of it.
type prefixConn struct {
	*guardConn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.guardConn.Read(p)
}

// handoffListener gives net/http the connections h1Conn hands over.
type handoffListener struct {
	addr   net.Addr
	ch     chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *handoffListener) push(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.closed.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }

// accept runs the loop's accept loop on ln until it is closed.
func (l *h1Loop) accept(base context.Context, ln net.Listener) error {
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if l.isClosing() {
				return net.ErrClosed
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			l.handoff.Close()
			return err
		}
		backoff = 0
		l.wg.Add(1)
		go l.serveConn(base, c)
	}
}

// wait waits for the loop's connections to end, false if ctx ends first.
func (l *h1Loop) wait(ctx context.Context) bool {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		l.mu.Lock()
		n := len(l.conns)
		l.mu.Unlock()
		if n == 0 {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// releaseBody returns the held-back body's buffer to its pool.
func (w *h1Writer) releaseBody() {
	if w.bodyBuf != nil {
		*w.bodyBuf = w.body[:0]
		h1Bodies.Put(w.bodyBuf)
		w.bodyBuf, w.body = nil, nil
	}
}
