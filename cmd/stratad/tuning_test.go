package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/strata-paas/strata/deploy/executor"
)

// TestInstanceTuning: the executor flags reach the executor config, and
// values the executor would misread (zero, out of range) are refused.
func TestInstanceTuning(t *testing.T) {
	tests := []struct {
		args    []string
		env     map[string]string
		want    func(executor.Config) bool
		wantErr string
	}{
		{args: nil, want: func(c executor.Config) bool {
			return c.StopGrace == 10*time.Second && c.DrainDelay == time.Second &&
				c.Restart == executor.RestartPolicy{Immediate: 3, Backoff: time.Second, MaxBackoff: 30 * time.Second, ResetAfter: time.Minute}
		}},
		{args: []string{"--stop-grace", "30s", "--drain-delay", "2s", "--restart-immediate", "0", "--restart-backoff", "500ms", "--restart-backoff-max", "5s", "--restart-reset", "10s"},
			want: func(c executor.Config) bool {
				return c.StopGrace == 30*time.Second && c.DrainDelay == 2*time.Second &&
					c.Restart == executor.RestartPolicy{Immediate: -1, Backoff: 500 * time.Millisecond, MaxBackoff: 5 * time.Second, ResetAfter: 10 * time.Second}
			}},
		{env: map[string]string{"STRATA_STOP_GRACE": "1m"}, want: func(c executor.Config) bool { return c.StopGrace == time.Minute }},
		{args: []string{"--stop-grace", "0s"}, wantErr: "--stop-grace 0s is outside"},
		{args: []string{"--stop-grace", "11m"}, wantErr: "--stop-grace 11m0s is outside"},
		{args: []string{"--drain-delay", "-1s"}, wantErr: "--drain-delay -1s is outside"},
		{args: []string{"--restart-immediate", "-2"}, wantErr: "--restart-immediate -2 is outside"},
		{args: []string{"--restart-backoff", "10s", "--restart-backoff-max", "5s"}, wantErr: "shorter than --restart-backoff"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			fs := newFlagSet("test", io.Discard)
			tuning := addInstanceTuning(fs)
			if err := parseFlags(fs, tc.args); err != nil {
				t.Fatal(err)
			}
			var cfg executor.Config
			err := tuning.apply(&cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !tc.want(cfg) {
				t.Fatalf("got %+v, %v", cfg, err)
			}
		})
	}
}

// TestACMENeedsHTTPS: the ACME flags are refused, before anything starts,
// by a router or microcloud that serves no HTTPS.
func TestACMENeedsHTTPS(t *testing.T) {
	ctx := t.Context()
	if err := runMicrocloud(ctx, []string{"--data", t.TempDir(), "--acme-email", "ops@example.com"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "add --router-tls-addr") {
		t.Errorf("microcloud: got %v, want a request for --router-tls-addr", err)
	}
	if err := runRouter(ctx, []string{"--acme-cache", t.TempDir()}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "add --tls-listen") {
		t.Errorf("router: got %v, want a request for --tls-listen", err)
	}
}
