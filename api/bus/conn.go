package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/strata-paas/strata/api"
)

// Options configures a connection.
type Options struct {
	Name   string       // client name shown by the server
	Logger *slog.Logger // defaults to slog.Default()
	// Server connects in-process to an embedded server instead of dialling URL.
	Server *Server
	// User and Password authenticate to a server that requires it
	// (ExecutorUser, RouterUser and the component credential); the client's
	// reply inbox is then named for User, as its grant requires.
	User, Password string
	// Replicas is how many servers keep each message of the work queues
	// this connection makes (EnsureWorkQueue). 0: the embedded server's
	// choice with Server, else 3 when the client knows at least three
	// servers of the cluster (given or learnt from the servers), else 1.
	Replicas int
}

// Conn is a connection to NATS. It reconnects forever; methods are safe for
// concurrent use.
type Conn struct {
	nc       *nats.Conn
	log      *slog.Logger
	replicas int

	mu       sync.Mutex
	watchers []func(connected bool)
}

// Connect connects to the NATS server at url (or in-process to opts.Server).
// url may list several servers of a cluster, comma-separated; the
// connection then moves to another of them (or to one the cluster told it
// of) when its server goes away.
func Connect(ctx context.Context, url string, opts Options) (*Conn, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	c := &Conn{log: log, replicas: opts.Replicas}
	if c.replicas <= 0 && opts.Server != nil {
		c.replicas = opts.Server.Replicas()
	}
	nopts := []nats.Option{
		nats.Name(opts.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.PingInterval(5 * time.Second),
		nats.MaxPingsOutstanding(2),
		nats.ReconnectBufSize(8 << 20),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("nats.disconnected", "err", err)
			c.notify(false)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats.reconnected", "url", nc.ConnectedUrl())
			c.notify(true)
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Warn("nats.error", "subject", subj, "err", err)
		}),
	}
	if opts.Server != nil {
		nopts = append(nopts, nats.InProcessServer(opts.Server.ns))
	}
	if opts.User != "" {
		nopts = append(nopts, nats.UserInfo(opts.User, opts.Password), nats.CustomInboxPrefix(inboxPrefix(opts.User)))
	}
	nc, err := nats.Connect(url, nopts...)
	if err != nil {
		return nil, api.Errorf(api.EUnavailable, "cannot connect to NATS at %s: %v — check --nats", url, err)
	}
	c.nc = nc
	// Wait briefly for the first connection so callers start connected when
	// the server is up; RetryOnFailedConnect keeps trying otherwise.
	deadline := time.Now().Add(5 * time.Second)
	for !nc.IsConnected() && time.Now().Before(deadline) {
		if errors.Is(nc.LastError(), nats.ErrAuthorization) {
			nc.Close()
			return nil, api.Errorf(api.EUnauthorized, "NATS at %s refused the credentials of %q — pass the component's credential (--token-file <controller data>/%s.token)", url, opts.User, opts.Name)
		}
		select {
		case <-ctx.Done():
			nc.Close()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return c, nil
}

// Close drains nothing and closes the connection.
func (c *Conn) Close() { c.nc.Close() }

// ServerName is the name of the server the connection is on ("" while
// disconnected).
func (c *Conn) ServerName() string { return c.nc.ConnectedServerName() }

// Drain unsubscribes, waits for in-flight handlers and closes.
func (c *Conn) Drain() error { return c.nc.Drain() }

// Connected reports whether the connection is up now.
func (c *Conn) Connected() bool { return c.nc.IsConnected() }

// OnConnectionChange registers fn to be called with false on disconnect and
// true on reconnect. fn runs on the NATS callback goroutine and must not block.
func (c *Conn) OnConnectionChange(fn func(connected bool)) {
	c.mu.Lock()
	c.watchers = append(c.watchers, fn)
	c.mu.Unlock()
}

func (c *Conn) notify(up bool) {
	c.mu.Lock()
	ws := append([]func(bool){}, c.watchers...)
	c.mu.Unlock()
	for _, fn := range ws {
		fn(up)
	}
}

// Flush waits until the server has processed everything sent so far.
func (c *Conn) Flush(ctx context.Context) error { return c.nc.FlushWithContext(ctx) }

// Publish sends v as JSON on subject. It does not wait for the server.
func (c *Conn) Publish(subject string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("bus: marshal %s: %w", subject, err)
	}
	return c.nc.Publish(subject, data)
}

// Subscription is an active subscription.
type Subscription struct{ sub *nats.Subscription }

// Unsubscribe stops delivery. A zero Subscription (as a test fake returns)
// has nothing to stop and returns nil.
func (s *Subscription) Unsubscribe() error {
	if s.sub == nil {
		return nil
	}
	return s.sub.Unsubscribe()
}

// Msg is one received message.
type Msg struct {
	Subject string
	Data    []byte
	m       *nats.Msg
}

// Reply answers a request message with v as JSON.
func (m *Msg) Reply(v any) error {
	if m.m.Reply == "" {
		return nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return m.m.Respond(data)
}

// Subscribe calls fn for every message on subject (wildcards allowed). With a
// non-empty queue, each message goes to one member of the queue group. fn
// runs on one goroutine per subscription, in order.
func (c *Conn) Subscribe(subject, queue string, fn func(*Msg)) (*Subscription, error) {
	h := func(m *nats.Msg) { fn(&Msg{Subject: m.Subject, Data: m.Data, m: m}) }
	var (
		s   *nats.Subscription
		err error
	)
	if queue != "" {
		s, err = c.nc.QueueSubscribe(subject, queue, h)
	} else {
		s, err = c.nc.Subscribe(subject, h)
	}
	if err != nil {
		return nil, fmt.Errorf("bus: subscribe %s: %w", subject, err)
	}
	_ = s.SetPendingLimits(1<<20, 256<<20)
	return &Subscription{sub: s}, nil
}

// Subscriber is what SubscribeJSON and Handle need of a connection. *Conn
// implements it; so can a consumer's in-memory fake.
type Subscriber interface {
	Subscribe(subject, queue string, fn func(*Msg)) (*Subscription, error)
}

var _ Subscriber = (*Conn)(nil)

// SubscribeJSON subscribes and decodes each message into a T. Messages that do
// not decode are logged (through c's logger when c is a *Conn) and dropped.
func SubscribeJSON[T any](c Subscriber, subject, queue string, fn func(subject string, v *T)) (*Subscription, error) {
	log := slog.Default()
	if conn, ok := c.(*Conn); ok {
		log = conn.log
	}
	return c.Subscribe(subject, queue, func(m *Msg) {
		v := new(T)
		if err := json.Unmarshal(m.Data, v); err != nil {
			log.Warn("bus.bad_message", "subject", m.Subject, "err", err)
			return
		}
		fn(m.Subject, v)
	})
}

// Handle serves request/reply on subject: fn's result (or its error, as
// {"error": …}) is sent back as JSON. Handlers run one at a time per subject.
func Handle[Req, Resp any](c Subscriber, subject, queue string, fn func(ctx context.Context, req *Req) (*Resp, error)) (*Subscription, error) {
	return c.Subscribe(subject, queue, func(m *Msg) {
		req := new(Req)
		if err := json.Unmarshal(m.Data, req); err != nil {
			_ = m.Reply(errorReply{Error: api.Errorf(api.EInvalid, "bad request on %s: %v", subject, err)})
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		resp, err := fn(ctx, req)
		if err != nil {
			_ = m.Reply(errorReply{Error: &api.Error{Code: api.ErrorCode(err), Message: api.ErrorMessage(err)}})
			return
		}
		_ = m.Reply(resp)
	})
}

type errorReply struct {
	Error *api.Error `json:"error"`
}

// Request sends req as JSON on subject and decodes the reply into a Resp. A
// reply of the form {"error": {...}} from Handle is returned as that *api.Error.
// No responder or no reply before ctx ends is EUnavailable.
func Request[Req, Resp any](ctx context.Context, c *Conn, subject string, req *Req) (*Resp, error) {
	resp := new(Resp)
	if err := c.Request(ctx, subject, req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// Request is the untyped form of the Request function, for consumers that
// declare the bus as an interface: it sends req as JSON on subject and
// decodes the reply into resp (a pointer), with the same errors. Without a
// deadline on ctx it waits at most 10s.
func (c *Conn) Request(ctx context.Context, subject string, req, resp any) error {
	data, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	m, err := c.nc.RequestWithContext(ctx, subject, data)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return api.Errorf(api.EUnavailable, "nobody answers on %s", subject)
		}
		return api.Errorf(api.EUnavailable, "request on %s: %v", subject, err)
	}
	var er errorReply
	if json.Unmarshal(m.Data, &er) == nil && er.Error != nil && er.Error.Code != "" {
		return er.Error
	}
	if len(m.Data) > 0 {
		if err := json.Unmarshal(m.Data, resp); err != nil {
			return fmt.Errorf("bus: decode reply on %s: %w", subject, err)
		}
	}
	return nil
}
