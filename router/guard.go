package router

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// Request framing guard.
//
// Go's HTTP/1 server already rejects (400 and a closed connection) several
// Host headers, differing Content-Lengths, malformed header lines, obs-fold
// and unsupported transfer codings; it answers oversize headers with 431.
// One ambiguity it accepts, as RFC 9112 §6.1 allows an intermediary to: a
// request with both Content-Length and Transfer-Encoding is read as chunked
// after the Content-Length is dropped — and the handler cannot tell, because
// both headers are gone by then. The issue asks for 400 and a closed
// connection there (as nginx does), so guardConn watches the raw bytes of
// each connection: it follows the framing of request after request (header
// block, Content-Length body, next header block) and notes at which request
// it stopped following — at a Transfer-Encoding (where it notes whether a
// Content-Length was there too), an Upgrade, or anything it does not
// understand. The handler wrapper answers 400 to the request that had both
// headers, and closes the connection after any request from which framing
// was not followed, so a request the guard did not see is never served.

// guardConn is a net.Conn that follows HTTP/1 request framing on Read.
// Read is called by one goroutine at a time (net/http's connReader); the
// results are published through atomics for the handler goroutine.
type guardConn struct {
	net.Conn

	stopAt atomic.Int64 // 1-based request number at which following stopped; 0: still following
	reject atomic.Int32 // a rejectReason for the request at stopAt
	served atomic.Int64 // requests handed to the handler so far

	// scanner state, touched only by Read
	state    scanState
	block    int64 // header blocks completed so far
	line     [64]byte
	lineLen  int  // bytes of the current line kept in line (capped)
	lineLong bool // the current line is longer than line
	first    bool // the next line is a request line
	sawCL    bool
	sawTE    bool
	upgrade  bool
	clValue  int64
	bodyLeft int64
}

// rejectReason is why the guard refuses a request the server would accept.
type rejectReason int32

const (
	rejectNone    rejectReason = iota
	rejectCLTE                 // both Content-Length and Transfer-Encoding
	rejectObsFold              // a header line folded onto the next (RFC 9112 §5.2)
)

func (r rejectReason) message() string {
	switch r {
	case rejectCLTE:
		return "the request has both Content-Length and Transfer-Encoding — send only one of them"
	case rejectObsFold:
		return "a header is folded over several lines (obs-fold) — send each header on one line"
	}
	return ""
}

type scanState uint8

const (
	scanHeaders scanState = iota
	scanBody
	scanStopped
)

func newGuardConn(c net.Conn) *guardConn {
	return &guardConn{Conn: c, first: true, clValue: -1}
}

func (g *guardConn) Read(p []byte) (int, error) {
	n, err := g.Conn.Read(p)
	if n > 0 && g.state != scanStopped {
		g.scan(p[:n])
	}
	return n, err
}

// CloseWrite half-closes a TCP connection; net/http uses it to avoid
// resetting a connection whose unread input would destroy an error response.
func (g *guardConn) CloseWrite() error {
	if cw, ok := g.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (g *guardConn) scan(b []byte) {
	for len(b) > 0 {
		switch g.state {
		case scanStopped:
			return
		case scanBody:
			if int64(len(b)) < g.bodyLeft {
				g.bodyLeft -= int64(len(b))
				return
			}
			b = b[g.bodyLeft:]
			g.bodyLeft = 0
			g.state = scanHeaders
		case scanHeaders:
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				g.appendLine(b)
				return
			}
			g.appendLine(b[:i])
			b = b[i+1:]
			g.endLine()
		}
	}
}

func (g *guardConn) appendLine(b []byte) {
	if g.lineLong {
		return
	}
	n := copy(g.line[g.lineLen:], b)
	g.lineLen += n
	if n < len(b) {
		g.lineLong = true
	}
}

// endLine handles one complete line of a header block.
func (g *guardConn) endLine() {
	line := g.line[:g.lineLen]
	long := g.lineLong
	g.lineLen, g.lineLong = 0, false
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	if g.first {
		if len(line) == 0 && !long {
			return // blank lines before a request line
		}
		g.first = false
		return
	}
	if len(line) == 0 && !long {
		g.endBlock()
		return
	}
	if line[0] == ' ' || line[0] == '\t' {
		g.stop(rejectObsFold) // net/http would unfold it
		return
	}
	colon := -1
	for i, c := range line {
		if c == ':' {
			colon = i
			break
		}
	}
	if colon < 0 {
		if !long {
			g.stop(rejectNone)
		}
		return // a long line: a header name is never 64 bytes in the requests we care about
	}
	name := line[:colon]
	switch {
	case equalFoldASCII(name, "content-length"):
		if long {
			g.stop(rejectNone)
			return
		}
		v := trimOWS(line[colon+1:])
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil || n < 0 || len(v) == 0 || v[0] < '0' || v[0] > '9' || (g.sawCL && n != g.clValue) {
			g.stop(rejectNone) // the server rejects it
			return
		}
		g.sawCL, g.clValue = true, n
	case equalFoldASCII(name, "transfer-encoding"):
		g.sawTE = true
	case equalFoldASCII(name, "upgrade"):
		g.upgrade = true
	}
}

// endBlock is the blank line after a header block.
func (g *guardConn) endBlock() {
	switch {
	case g.sawTE && g.sawCL:
		g.stop(rejectCLTE)
		return
	case g.sawTE:
		g.stop(rejectNone)
		return
	case g.upgrade:
		g.stop(rejectNone)
		return
	case g.sawCL && g.clValue > 0:
		g.state, g.bodyLeft = scanBody, g.clValue
	}
	g.block++
	g.first, g.sawCL, g.sawTE, g.upgrade, g.clValue = true, false, false, false, -1
}

// stop ends following at the request whose header block is being read
// (request number block+1).
func (g *guardConn) stop(why rejectReason) {
	g.reject.Store(int32(why))
	g.stopAt.Store(g.block + 1)
	g.state = scanStopped
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func equalFoldASCII(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

type guardListener struct{ net.Listener }

func (l guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newGuardConn(c), nil
}

type guardKey struct{}

func guardConnContext(ctx context.Context, c net.Conn) context.Context {
	switch g := c.(type) {
	case *guardConn:
		return context.WithValue(ctx, guardKey{}, g)
	case *prefixConn: // handed over by the serving loop (h1serve.go)
		return context.WithValue(ctx, guardKey{}, g.guardConn)
	}
	return ctx
}

// guardHandler refuses a request the guard found ambiguous (400, then the
// connection is closed without reading its body) and closes the connection
// after any request the guard stopped following at.
type guardHandler struct{ next http.Handler }

func (h guardHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 {
		if g, ok := r.Context().Value(guardKey{}).(*guardConn); ok {
			k := g.served.Add(1)
			if at := g.stopAt.Load(); at != 0 && k >= at {
				if why := rejectReason(g.reject.Load()); k == at && why != rejectNone {
					refuse(w, r, g, why)
					return
				}
				w.Header().Set("Connection", "close")
			}
		}
	}
	h.next.ServeHTTP(w, r)
}

// refuse answers 400 on the raw connection and closes it. net/http would
// first try to read the rest of the body, which a smuggling client may never
// send.
func refuse(w http.ResponseWriter, r *http.Request, g *guardConn, why rejectReason) {
	reqID := requestID(r)
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		w.Header().Set("Connection", "close")
		writeError(w, r, http.StatusBadRequest, reqID, why.message())
		return
	}
	defer conn.Close()
	body := "400 Bad Request\n\n" + why.message() + "\n\nrequest id: " + reqID + "\n"
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = brw.WriteString("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\nConnection: close\r\nX-Request-Id: " + reqID +
		"\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	if brw.Flush() != nil {
		return
	}
	// Half-close and drain briefly so that unread request bytes do not turn
	// the close into a reset that destroys the response in flight.
	if g.CloseWrite() == nil {
		_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		_, _ = io.CopyN(io.Discard, conn, 256<<10)
	}
}
