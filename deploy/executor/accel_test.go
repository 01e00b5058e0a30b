package executor_test

import (
	"testing"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/driver"
	"github.com/strata-paas/strata/deploy/driver/mock"
	"github.com/strata-paas/strata/deploy/executor"
)

// vmDriver is a mock driver whose fingerprint is a VM driver's: microvm
// isolation with an acceleration.
type vmDriver struct{ *mock.Driver }

func (vmDriver) Fingerprint() driver.Fingerprint {
	return driver.Fingerprint{Driver: "mock-microvm", Isolations: []api.Isolation{api.IsolationMicroVM}, Accel: "tcg"}
}

// TestHeartbeatAccel: the heartbeat carries the acceleration a driver's
// fingerprint reports, and none when no driver reports one.
func TestHeartbeatAccel(t *testing.T) {
	h := newHarness(t)
	vm := vmDriver{mock.New(mock.Config{Name: "mock-microvm"})}
	e, _ := h.run(executor.Config{NodeID: "node-vm", DataDir: t.TempDir()}, mock.New(mock.Config{}), vm)
	_, hb := waitFor(t, h.rec, api.SubjectNodeHeartbeat, 0, "a heartbeat of node-vm", func(hb *api.NodeHeartbeat) bool {
		return hb.NodeID == e.NodeID()
	})
	if hb.Accel != "tcg" {
		t.Errorf("heartbeat accel = %q, want tcg", hb.Accel)
	}
	if len(hb.Isolations) != 2 || hb.Isolations[1] != api.IsolationMicroVM {
		t.Errorf("heartbeat isolations = %v, want process-unconfined and microvm", hb.Isolations)
	}

	h2 := newHarness(t)
	e2, _ := h2.run(executor.Config{NodeID: "node-plain", DataDir: t.TempDir()}, mock.New(mock.Config{}))
	_, hb = waitFor(t, h2.rec, api.SubjectNodeHeartbeat, 0, "a heartbeat of node-plain", func(hb *api.NodeHeartbeat) bool {
		return hb.NodeID == e2.NodeID()
	})
	if hb.Accel != "" {
		t.Errorf("heartbeat accel of a node without a VM driver = %q, want none", hb.Accel)
	}
}
