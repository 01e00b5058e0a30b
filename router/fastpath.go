package router

import (
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
)

// The lean path.
//
// Most requests a PaaS router sees have no body and no Upgrade. For those,
// httputil.ReverseProxy's general machinery (a cloned request and header
// map, a context per request, an http.Request serialised with sorted
// headers, a second header map for the response) was a large part of the
// router's own CPU. serveLean does the same work directly: it writes the
// outbound request head into a reused buffer, sends it over h1Transport's
// keep-alive connections with the same endpoint choice and retries, and
// hands the backend's header map to the client's response. Everything else
// (bodies, upgrades, unusual request targets) still goes through
// ReverseProxy. The outbound request is the one ReverseProxy would send:
// hop-by-hop headers and those named in Connection removed, Forwarded
// dropped, X-Forwarded-For/Host/Proto and X-Request-Id set, no default
// User-Agent, Te: trailers kept.

// leanEligible reports whether r can take the lean path: a bodiless,
// non-upgrade HTTP/1 request whose target and Host need none of the
// rewriting ReverseProxy and Request.Write would do.
func leanEligible(r *http.Request) bool {
	return r.ProtoMajor == 1 && r.Body == http.NoBody && r.ContentLength == 0 && len(r.TransferEncoding) == 0 &&
		r.Method != http.MethodConnect && r.URL.Opaque == "" && len(r.Header["Upgrade"]) == 0 &&
		r.Host != "" && plainHost(r.Host) && cleanQuery(r.URL.RawQuery)
}

// plainHost reports whether every byte of host is one httpguts.ValidHostHeader
// accepts, except '%' (IPv6 zones, which Request.Write would strip).
func plainHost(host string) bool {
	for i := 0; i < len(host); i++ {
		c := host[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!$&'()*+,-.:;=[]_~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// cleanQuery reports whether ReverseProxy would forward q unchanged (it
// re-encodes queries with ';' or bad percent escapes).
func cleanQuery(q string) bool {
	for i := 0; i < len(q); i++ {
		switch q[i] {
		case ';':
			return false
		case '%':
			if i+2 >= len(q) || !isHex(q[i+1]) || !isHex(q[i+2]) {
				return false
			}
		}
	}
	return true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// outboundSkip lists the request headers never copied as they are: hop-by-hop
// headers, forwarding headers the router sets itself, and those Request.Write
// writes separately or not at all.
var outboundSkip = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"Forwarded": true, "X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true,
	"X-Request-Id": true, "Host": true, "User-Agent": true, "Content-Length": true,
}

// hopHeaders are the hop-by-hop headers removed from responses (RFC 9110
// §7.6.1 and the RFC 2616 list ReverseProxy keeps).
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// appendRequestHead appends the HTTP/1.1 request head sent to a backend for
// the lean request r. Header names and values were validated by the server.
func appendRequestHead(b []byte, r *http.Request, reqID string) []byte {
	b = append(b, r.Method...)
	b = append(b, ' ')
	b = append(b, r.URL.RequestURI()...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, r.Host...)
	b = append(b, "\r\n"...)
	if ua := r.Header["User-Agent"]; len(ua) > 0 && ua[0] != "" {
		b = appendHeader(b, "User-Agent", ua[0])
	}
	conn := r.Header["Connection"]
	for k, vv := range r.Header {
		if outboundSkip[k] || (len(conn) > 0 && containsToken(conn, k)) {
			continue
		}
		for _, v := range vv {
			b = appendHeader(b, k, v)
		}
	}
	if containsToken(r.Header["Te"], "trailers") {
		b = appendHeader(b, "Te", "trailers")
	}
	if clientIP, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		b = append(b, "X-Forwarded-For: "...)
		for _, v := range r.Header["X-Forwarded-For"] {
			b = append(b, v...)
			b = append(b, ", "...)
		}
		b = append(b, clientIP...)
		b = append(b, "\r\n"...)
	}
	b = appendHeader(b, "X-Forwarded-Host", r.Host)
	if r.TLS == nil {
		b = appendHeader(b, "X-Forwarded-Proto", "http")
	} else {
		b = appendHeader(b, "X-Forwarded-Proto", "https")
	}
	b = appendHeader(b, "X-Request-Id", reqID)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		b = append(b, "Content-Length: 0\r\n"...) // as Request.Write sends for bodiless requests
	}
	return append(b, "\r\n"...)
}

func appendHeader(b []byte, k, v string) []byte {
	b = append(b, k...)
	b = append(b, ": "...)
	b = append(b, v...)
	return append(b, "\r\n"...)
}

// containsToken reports whether one of the comma-separated values is token
// (ASCII case-insensitive), as httpguts.HeaderValuesContainsToken; for a
// canonical header name and the Connection header's values, whether the
// header is named there.
func containsToken(values []string, token string) bool {
	for _, v := range values {
		for tok := range strings.SplitSeq(v, ",") {
			if equalFoldString(strings.Trim(tok, " \t"), token) {
				return true
			}
		}
	}
	return false
}

// equalFoldString is ASCII-only case-insensitive equality.
func equalFoldString(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x >= 'A' && x <= 'Z' {
			x += 'a' - 'A'
		}
		if y >= 'A' && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// removeHopByHop removes hop-by-hop headers and those named in Connection,
// as ReverseProxy does.
func removeHopByHop(h http.Header) {
	for _, f := range h["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = strings.Trim(sf, " \t"); sf != "" {
				h.Del(sf)
			}
		}
	}
	for _, f := range hopHeaders {
		delete(h, f)
	}
}

var errUnexpectedSwitch = errors.New("the backend switched protocols on a request without Upgrade")

// serveLean proxies the lean request r (see leanEligible) to st.pool.
func (p *Proxy) serveLean(st *reqState, r *http.Request) {
	st.head = appendRequestHead(st.head[:0], r, st.reqID)
	resp, err := p.roundTrip(st, r, st.head)
	if err != nil {
		p.writeProxyError(st, &st.rw, r, err)
		return
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		resp.Body.Close()
		p.writeProxyError(st, &st.rw, r, errUnexpectedSwitch)
		return
	}
	removeHopByHop(resp.Header)
	// A slice of its own, not one in the pooled reqState: the serving loop
	// writes the response head after the handler returned (and the state
	// went back to its pool), where net/http copied the header map at
	// WriteHeader.
	resp.Header["X-Request-Id"] = []string{st.reqID}
	dst := st.rw.Header()
	for k, vv := range resp.Header {
		// The response's header map is dropped after this: its slices can
		// be shared rather than copied.
		if old, ok := dst[k]; ok {
			dst[k] = append(old, vv...)
		} else {
			dst[k] = vv
		}
	}
	announced := len(resp.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		dst.Add("Trailer", strings.Join(keys, ", "))
	}
	st.rw.WriteHeader(resp.StatusCode)

	if err := p.copyBody(&st.rw, resp, r); err != nil {
		resp.Body.Close()
		// The response is cut short: abort the client's connection so that
		// it cannot take the partial body for a complete one.
		panic(http.ErrAbortHandler)
	}
	resp.Body.Close() // fills resp.Trailer

	if len(resp.Trailer) > 0 {
		st.rw.Flush() // forces chunking, so that the trailers can follow
	}
	if len(resp.Trailer) == announced {
		for k, vv := range resp.Trailer {
			for _, v := range vv {
				dst.Add(k, v)
			}
		}
		return
	}
	for k, vv := range resp.Trailer {
		for _, v := range vv {
			dst.Add(http.TrailerPrefix+k, v)
		}
	}
}

// copyBody copies the response body to w with a pooled buffer, flushing
// after every write for streamed responses (no Content-Length, or
// server-sent events) as ReverseProxy does.
func (p *Proxy) copyBody(w *responseWriter, resp *http.Response, r *http.Request) error {
	flush := resp.ContentLength == -1 || isEventStream(resp.Header)
	if flush {
		w.Flush()
	}
	if resp.Body == http.NoBody {
		return nil
	}
	buf := p.buffers.Get()
	defer p.buffers.Put(buf)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			if flush {
				w.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			if r.Context().Err() == nil {
				p.log.Warn("proxy.body_read_failed", "host", r.Host, "err", rerr)
			}
			return rerr
		}
	}
}

func isEventStream(h http.Header) bool {
	const es = "text/event-stream"
	ct := h["Content-Type"]
	if len(ct) == 0 || len(ct[0]) < len(es) || !equalFoldString(ct[0][:len(es)], es) {
		return false
	}
	mt, _, _ := mime.ParseMediaType(ct[0])
	return mt == "text/event-stream"
}
