package router

import "net"

// GuardScan feeds data to a request-framing guard in reads of the given
// sizes (cycled) and returns the request number at which it stopped
// following (0: still following) and the rejection reason.
func GuardScan(data []byte, sizes []int) (stopAt int64, reject int32) {
	g := newGuardConn(nil)
	for i := 0; len(data) > 0; i++ {
		n := len(data)
		if len(sizes) > 0 && sizes[i%len(sizes)] > 0 && sizes[i%len(sizes)] < n {
			n = sizes[i%len(sizes)]
		}
		g.scan(data[:n])
		data = data[n:]
	}
	return g.stopAt.Load(), g.reject.Load()
}

var _ net.Conn = (*guardConn)(nil)

// HeldRoutes returns the number of routes with an entry in the hold counts.
func (p *Proxy) HeldRoutes() int {
	p.holds.mu.Lock()
	defer p.holds.mu.Unlock()
	return len(p.holds.n)
}
