package controller

import (
	"context"
	"fmt"
	"strings"

	"github.com/strata-paas/strata/api"
)

// crashMessage is the event of one crash: which instance, why (with the
// exit code), how many restarts so far, and its last output lines.
func crashMessage(in *api.Instance, ev *api.InstanceEvent) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s/%d crashed", in.Process, in.Index)
	if ev.ExitCode != nil {
		fmt.Fprintf(&b, " (exit code %d)", *ev.ExitCode)
	}
	reason := ev.Reason
	if reason == "" {
		reason = "exited"
	}
	fmt.Fprintf(&b, ": %s; restarts so far: %d", reason, ev.Instance.Restarts)
	if len(ev.LastLines) > 0 {
		b.WriteString("; last output: ")
		b.WriteString(strings.Join(ev.LastLines, " | "))
	}
	return b.String()
}

// liveUsage copies CPU and memory use from the latest heartbeats into ins.
func (s *Apps) liveUsage(ins []*api.Instance) {
	views := s.nodes.views(s.cfg.Now(), s.cfg.NodeTTL)
	for _, in := range ins {
		if v := views[in.NodeID]; v != nil {
			if rep, ok := v.listed[in.ID]; ok {
				in.CPUPercent, in.MemoryBytes = rep.CPUPercent, rep.MemoryBytes
			}
		}
	}
}

// SetHealthCheck validates and stores how the instances of one process type
// are checked. It applies to instances started afterwards (the next release,
// restart or crash); it makes no release itself.
func (s *Apps) SetHealthCheck(ctx context.Context, name string, req api.HealthCheckRequest) (*api.Process, error) {
	if req.Process == "" {
		req.Process = api.ProcessWeb
	}
	if err := validateHealthCheck(req); err != nil {
		return nil, err
	}
	app, unlock, err := s.lockApp(ctx, name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	procs, err := s.store.Processes(ctx, app.ID)
	if err != nil {
		return nil, err
	}
	i, err := processIndex(procs, name, req.Process)
	if err != nil {
		return nil, err
	}
	p := procs[i]
	p.HealthCheck, p.HealthCheckPath, p.HealthCheckTimeout, p.HealthCheckInterval = req.Type, req.Path, req.Timeout, req.Interval
	if p == procs[i] {
		return &p, nil
	}
	if err := s.store.SetHealthCheck(ctx, p); err != nil {
		return nil, fmt.Errorf("set health check: %w", err)
	}
	desc := fmt.Sprintf("health check of %s set to %s", p.Type, p.HealthCheck)
	if p.HealthCheckPath != "" {
		desc += " " + p.HealthCheckPath
	}
	if p.HealthCheckTimeout > 0 {
		desc += fmt.Sprintf(", start-up timeout %ds", p.HealthCheckTimeout)
	}
	if p.HealthCheckInterval > 0 {
		desc += fmt.Sprintf(", every %ds", p.HealthCheckInterval)
	}
	s.audit.record(ctx, app, "health-check", "%s", desc)
	return &p, nil
}

func validateHealthCheck(req api.HealthCheckRequest) error {
	if err := validateProcessType(req.Process); err != nil {
		return err
	}
	switch req.Type {
	case api.HealthPort, api.HealthProcess:
		if req.Path != "" {
			return api.Errorf(api.EInvalid, "a health check path needs the http type — use --type http or drop the path")
		}
	case api.HealthHTTP:
		if req.Path == "" || req.Path[0] != '/' || len(req.Path) > 1024 || strings.ContainsAny(req.Path, " \t\r\n\x00#") {
			return api.Errorf(api.EInvalid, "health check path %q is not a path like /healthz", clip(req.Path))
		}
	default:
		return api.Errorf(api.EInvalid, "health check type %q is not port, http or process", clip(req.Type))
	}
	if req.Timeout < 0 || req.Timeout > api.MaxHealthCheckTimeout {
		return api.Errorf(api.EInvalid, "health check timeout %d s is outside 0–%d s", req.Timeout, api.MaxHealthCheckTimeout)
	}
	if req.Interval < 0 || req.Interval > api.MaxHealthCheckInterval {
		return api.Errorf(api.EInvalid, "health check interval %d s is outside 0–%d s", req.Interval, api.MaxHealthCheckInterval)
	}
	return nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
