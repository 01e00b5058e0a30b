package api

import "context"

// LeaseLeader is the lease the controller that runs the converger,
// scheduler, plan applier and build sweeps holds (docs/architecture.md,
// "Leader lease").
const LeaseLeader = "leader"

// Fence is a lease as one holder took it: store writes made with a context
// carrying it (those of the store's write transactions, which carry every
// write of the leader-only work) are refused unless Holder still holds
// lease Lease at Term and the lease has not expired, checked by the
// database in the write's own transaction.
type Fence struct {
	Lease  string
	Holder string
	Term   int64
}

type fenceKey struct{}

// WithFence returns a context whose store writes are fenced by f.
func WithFence(ctx context.Context, f Fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, f)
}

// FenceFrom returns the fence in ctx, if any.
func FenceFrom(ctx context.Context) (Fence, bool) {
	f, ok := ctx.Value(fenceKey{}).(Fence)
	return f, ok
}
