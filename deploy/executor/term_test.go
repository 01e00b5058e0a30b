package executor_test

import (
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/driver/mock"
	"github.com/strata-paas/strata/deploy/executor"
)

// TestOlderTermIgnored: once a command of leader term 6 arrived, commands
// of an older term (a deposed leader's) are refused and change nothing;
// commands of REST requests (term 0) and of the current or a newer term are
// served.
func TestOlderTermIgnored(t *testing.T) {
	h := newHarness(t)
	drv := mock.New(mock.Config{})
	e, _ := h.run(executor.Config{NodeID: "node-term", DataDir: t.TempDir(), HeartbeatInterval: 50 * time.Millisecond}, drv)
	ref := h.scriptDroplet()
	spec := func(id string) *api.InstanceSpec {
		return &api.InstanceSpec{InstanceID: id, AppID: "app-t", AppName: "termapp", Process: "worker", Release: 1, DropletBlob: ref, Command: "run"}
	}
	if err := h.command(e.NodeID(), api.NodeCommand{Kind: api.CmdStart, Start: spec("t-5"), Term: 5}); err != nil {
		t.Fatalf("start of term 5: %v", err)
	}
	if err := h.command(e.NodeID(), api.NodeCommand{Kind: api.CmdStart, Start: spec("t-6"), Term: 6}); err != nil {
		t.Fatalf("start of term 6: %v", err)
	}
	waitFor(t, h.rec, api.SubjectInstanceEvent, 0, "t-6 running", eventIs("t-6", api.InstanceRunning))

	// The deposed leader of term 5: its stop and start are refused.
	mark := h.rec.len()
	err := h.command(e.NodeID(), api.NodeCommand{Kind: api.CmdStop, InstanceID: "t-6", Term: 5})
	if api.ErrorCode(err) != api.EConflict {
		t.Fatalf("stop of term 5 after term 6: got %v, want a conflict", err)
	}
	err = h.command(e.NodeID(), api.NodeCommand{Kind: api.CmdStart, Start: spec("t-late"), Term: 5})
	if api.ErrorCode(err) != api.EConflict {
		t.Fatalf("start of term 5 after term 6: got %v, want a conflict", err)
	}
	// A heartbeat sent after the refused commands still lists t-6 running
	// and no t-late.
	_, hb := waitFor(t, h.rec, api.SubjectNodeHeartbeat, mark, "heartbeat after the refused commands", func(hb *api.NodeHeartbeat) bool {
		return hb.NodeID == e.NodeID()
	})
	_, hb = waitFor(t, h.rec, api.SubjectNodeHeartbeat, mark+1, "a later heartbeat", func(x *api.NodeHeartbeat) bool {
		return x.NodeID == e.NodeID() && x.Time.After(hb.Time)
	})
	states := map[string]api.InstanceState{}
	for _, in := range hb.Instances {
		states[in.InstanceID] = in.State
	}
	if states["t-6"] != api.InstanceRunning {
		t.Fatalf("after a refused stop, t-6 is %q, want running (heartbeat %+v)", states["t-6"], hb.Instances)
	}
	if _, ok := states["t-late"]; ok {
		t.Fatalf("a refused start ran t-late (heartbeat %+v)", hb.Instances)
	}

	// A REST request's command (term 0) and the current leader's are served.
	mark = h.rec.len()
	if err := h.command(e.NodeID(), api.NodeCommand{Kind: api.CmdStop, InstanceID: "t-5"}); err != nil {
		t.Fatalf("stop of term 0: %v", err)
	}
	waitFor(t, h.rec, api.SubjectInstanceEvent, mark, "t-5 stopped", eventIs("t-5", api.InstanceStopped))
	if err := h.command(e.NodeID(), api.NodeCommand{Kind: api.CmdStop, InstanceID: "t-6", Term: 7}); err != nil {
		t.Fatalf("stop of term 7: %v", err)
	}
	waitFor(t, h.rec, api.SubjectInstanceEvent, mark, "t-6 stopped", eventIs("t-6", api.InstanceStopped))
	if err := h.command(e.NodeID(), api.NodeCommand{Kind: api.CmdStop, InstanceID: "ghost", Term: 6}); api.ErrorCode(err) != api.EConflict {
		t.Fatalf("stop of term 6 after term 7: got %v, want a conflict", err)
	}
}
