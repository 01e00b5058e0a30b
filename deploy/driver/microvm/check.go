package microvm

import (
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// checkPort is where the executor health-checks an instance
// (Endpoint.CheckPort): a listener of the driver's on the advertise address
// that is open exactly while the guest reports something listening on its
// port, and passes each connection on to the forwarded port (so HTTP checks
// reach the app). User-mode networking accepts connections at the forwarded
// port before the guest listens (and after it stops), so a port check there
// would always pass.
type checkPort struct {
	host    string
	port    int
	forward int // the instance's forwarded port on host

	mu     sync.Mutex
	ln     net.Listener
	closed bool
}

// newCheckPort reserves a free port on host for the check listener (closed
// until the guest listens).
func newCheckPort(host string, forward int) (*checkPort, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return &checkPort{host: host, port: port, forward: forward}, nil
}

// setForward sets the forwarded port connections are passed to.
func (c *checkPort) setForward(port int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forward = port
}

// set opens or closes the listener; after close it stays closed.
func (c *checkPort) set(listening bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || listening == (c.ln != nil) {
		return
	}
	if !listening {
		c.ln.Close()
		c.ln = nil
		return
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(c.host, strconv.Itoa(c.port)))
	if err != nil {
		return // taken meanwhile: the check fails, which is the safe side
	}
	c.ln = ln
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go c.pass(conn)
		}
	}()
}

func (c *checkPort) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.ln != nil {
		c.ln.Close()
		c.ln = nil
	}
}

// pass copies conn to and from the forwarded port, for at most a minute.
func (c *checkPort) pass(conn net.Conn) {
	defer conn.Close()
	c.mu.Lock()
	forward := c.forward
	c.mu.Unlock()
	up, err := net.DialTimeout("tcp", net.JoinHostPort(c.host, strconv.Itoa(forward)), 5*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	deadline := time.Now().Add(time.Minute)
	_ = conn.SetDeadline(deadline)
	_ = up.SetDeadline(deadline)
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(up, conn)
		if tc, ok := up.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		close(done)
	}()
	_, _ = io.Copy(conn, up)
	<-done
}
