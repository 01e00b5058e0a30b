package bus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strata-paas/strata/api"
)

// EnsureWorkQueue creates (or updates) a JetStream work-queue stream named
// stream that holds subjects. Each message is delivered to one consumer and
// removed once acknowledged. In a NATS cluster the stream is kept on as
// many servers as the connection's replicas (Options.Replicas), so losing
// one of three loses no accepted message; an existing stream never loses
// replicas here (a client that sees fewer servers does not scale it down).
func (c *Conn) EnsureWorkQueue(ctx context.Context, stream string, subjects ...string) error {
	js, err := jetstream.New(c.nc)
	if err != nil {
		return err
	}
	replicas := c.workReplicas()
	if s, err := js.Stream(ctx, stream); err == nil && s.CachedInfo().Config.Replicas > replicas {
		replicas = s.CachedInfo().Config.Replicas
	}
	for {
		// One attempt answers within 5 s, or is made again: a cluster
		// electing its meta leader may drop the request.
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = js.CreateOrUpdateStream(actx, jetstream.StreamConfig{
			Name:      stream,
			Subjects:  subjects,
			Retention: jetstream.WorkQueuePolicy,
			Storage:   jetstream.FileStorage,
			MaxAge:    24 * time.Hour,
			Replicas:  replicas,
		})
		cancel()
		if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			break
		}
	}
	if err != nil {
		return api.Errorf(api.EUnavailable, "cannot create work queue %s: %v — is JetStream enabled on the NATS server?", stream, err)
	}
	// A replicated stream takes messages once its servers have elected
	// its leader.
	for replicas > 1 {
		s, err := js.Stream(ctx, stream)
		if err == nil && s.CachedInfo().Cluster != nil && s.CachedInfo().Cluster.Leader != "" {
			break
		}
		select {
		case <-ctx.Done():
			return api.Errorf(api.EUnavailable, "work queue %s has no leader: %v", stream, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// newMsgID returns a random JetStream message id.
func newMsgID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// workReplicas is the replicas of the work queues this connection makes.
func (c *Conn) workReplicas() int {
	if c.replicas > 0 {
		return c.replicas
	}
	known := map[string]bool{}
	for _, u := range c.nc.Servers() {
		known[u] = true
	}
	if len(known) >= 3 {
		return 3
	}
	return 1
}

// Enqueue publishes v as JSON to a work-queue subject and waits for JetStream
// to acknowledge it.
func (c *Conn) Enqueue(ctx context.Context, subject string, v any) error {
	js, err := jetstream.New(c.nc)
	if err != nil {
		return err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	// In a cluster the stream may be electing a leader and not answer:
	// publish again for up to 15 s, with one message id so JetStream
	// stores it once.
	id := newMsgID()
	giveUp := time.Now().Add(15 * time.Second)
	for {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = js.Publish(actx, subject, data, jetstream.WithMsgID(id))
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || time.Now().After(giveUp) || !(errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrNoResponders)) {
			return api.Errorf(api.EUnavailable, "cannot enqueue on %s: %v", subject, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WorkConfig configures a work consumer.
type WorkConfig struct {
	Stream  string
	Durable string        // consumer name shared by all workers of a kind
	AckWait time.Duration // redelivery after this long without progress
	// MaxDeliver bounds redeliveries of one message (0 = 3).
	MaxDeliver int
	// Concurrency is how many messages one worker handles at once (0 = 1).
	Concurrency int
}

// ConsumeWork calls fn for each message of the work queue until ctx ends.
// While fn runs, progress is signalled so long jobs are not redelivered; when
// fn returns nil the message is acknowledged, otherwise it is redelivered
// after a short delay (up to MaxDeliver times).
func (c *Conn) ConsumeWork(ctx context.Context, cfg WorkConfig, fn func(ctx context.Context, data []byte, attempt int) error) error {
	js, err := jetstream.New(c.nc)
	if err != nil {
		return err
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 30 * time.Second
	}
	if cfg.MaxDeliver <= 0 {
		cfg.MaxDeliver = 3
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 1
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, cfg.Stream, jetstream.ConsumerConfig{
		Durable:       cfg.Durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    cfg.MaxDeliver,
		MaxAckPending: cfg.Concurrency,
	})
	if err != nil {
		return api.Errorf(api.EUnavailable, "cannot consume %s: %v", cfg.Stream, err)
	}
	sem := make(chan struct{}, cfg.Concurrency)
	for ctx.Err() == nil {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		msgs, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			<-sem
			if ctx.Err() != nil {
				return nil
			}
			c.log.Debug("bus.fetch_failed", "stream", cfg.Stream, "err", err)
			time.Sleep(250 * time.Millisecond)
			continue
		}
		got := false
		for m := range msgs.Messages() {
			got = true
			go func(m jetstream.Msg) {
				defer func() { <-sem }()
				c.handleWork(ctx, cfg, m, fn)
			}(m)
		}
		if !got {
			<-sem
		}
		if err := msgs.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && ctx.Err() == nil {
			c.log.Debug("bus.fetch_error", "stream", cfg.Stream, "err", err)
		}
	}
	return nil
}

func (c *Conn) handleWork(ctx context.Context, cfg WorkConfig, m jetstream.Msg, fn func(context.Context, []byte, int) error) {
	attempt := 1
	if md, err := m.Metadata(); err == nil {
		attempt = int(md.NumDelivered)
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = m.InProgress()
			}
		}
	}()
	err := fn(ctx, m.Data(), attempt)
	close(done)
	if err != nil {
		c.log.Warn("bus.work_failed", "stream", cfg.Stream, "attempt", attempt, "err", err)
		_ = m.NakWithDelay(time.Second)
		return
	}
	if err := m.Ack(); err != nil {
		c.log.Warn("bus.ack_failed", "stream", cfg.Stream, "err", fmt.Sprint(err))
	}
}
