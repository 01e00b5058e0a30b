package process_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/driver"
	"github.com/strata-paas/strata/deploy/driver/process"
)

func TestParseUsageStat(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want process.UsageStat
		ok   bool
	}{
		{"plain", "42 (sh) S 1 40 40 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 1 0 100 1000 300 18446744073709551615",
			process.UsageStat{PGID: 40, CPUTime: 2 * time.Second, RSSPages: 300}, true},
		{"name with spaces and parens", "7 (a) b (c) R 1 9 9 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5 10 4 0",
			process.UsageStat{PGID: 9, CPUTime: 30 * time.Millisecond, RSSPages: 4}, true},
		{"truncated", "7 (a) R 1 9 9", process.UsageStat{}, false},
		{"no name", "garbage", process.UsageStat{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := process.ParseUsageStat([]byte(tc.in))
			if ok != tc.ok || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func FuzzParseUsageStat(f *testing.F) {
	f.Add([]byte("42 (sh) S 1 40 40 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 1 0 100 1000 300 0"))
	f.Add([]byte("1 ())) R"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, ok := process.ParseUsageStat(b)
		if ok && (st.CPUTime < 0) {
			t.Fatalf("negative CPU time from %q", b)
		}
	})
}

// TestUsage measures a busy instance: its CPU time grows and it has memory.
func TestUsage(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	d, err := process.New(process.Config{StateDir: t.TempDir(), Confine: process.ConfineNever})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = d.Start(ctx, &driver.Spec{ID: "busy", Dir: t.TempDir(), Command: "while :; do :; done", Env: []string{"PATH=/usr/bin:/bin"}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Destroy(ctx, "busy")
	deadline := time.Now().Add(10 * time.Second)
	for {
		u, err := d.Usage(ctx, "busy")
		if err != nil {
			t.Fatal(err)
		}
		if u.CPUTime > 50*time.Millisecond && u.MemoryBytes > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage of a busy loop stayed %+v", u)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := d.Usage(ctx, "nope"); api.ErrorCode(err) != api.ENotFound {
		t.Fatalf("Usage of an unknown id: got %v, want not_found", err)
	}
}
