package executor_test

import (
	"strings"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/executor"
)

func TestRestartDelay(t *testing.T) {
	p := executor.RestartPolicy{Immediate: 3, Backoff: time.Second, MaxBackoff: 30 * time.Second}
	want := []time.Duration{0, 0, 0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	for i, w := range want {
		if got := p.Delay(i + 1); got != w {
			t.Errorf("Delay(%d) = %v, want %v", i+1, got, w)
		}
	}
	if got := p.Delay(10000); got != 30*time.Second {
		t.Errorf("Delay(10000) = %v, want the cap", got)
	}
}

func TestDetectSubstrate(t *testing.T) {
	tests := []struct {
		name, cpuinfo, vendor string
		want                  api.Substrate
	}{
		{"hypervisor flag", "processor\t: 0\nflags\t\t: fpu vme hypervisor lahf_lm\n", "", api.SubstrateVM},
		{"qemu dmi", "flags\t: fpu vme\n", "QEMU\n", api.SubstrateVM},
		{"metal", "flags\t: fpu vme\n", "Dell Inc.\n", api.SubstrateMetal},
		{"flag-like word elsewhere", "model name\t: hypervisor-ready cpu\nflags\t: fpu\n", "", api.SubstrateMetal},
		{"empty", "", "", api.SubstrateMetal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := executor.DetectSubstrate([]byte(tt.cpuinfo), []byte(tt.vendor)); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestMemTotal(t *testing.T) {
	if got := executor.MemTotalMB([]byte("MemTotal:       16318540 kB\nMemFree: 1 kB\n")); got != 15936 {
		t.Fatalf("got %d, want 15936", got)
	}
	if got := executor.MemTotalMB([]byte("garbage")); got != 0 {
		t.Fatalf("got %d for garbage, want 0", got)
	}
}

func TestLineSplitting(t *testing.T) {
	long := strings.Repeat("x", executor.MaxLogLine+10)
	tests := []struct {
		name   string
		chunks []string
		flush  bool
		want   []string
	}{
		{"lines across writes", []string{"a", "b\nc", "\n"}, false, []string{"ab", "c"}},
		{"crlf", []string{"one\r\ntwo\r\n"}, false, []string{"one", "two"}},
		{"partial kept until flush", []string{"tail"}, false, nil},
		{"partial flushed", []string{"tail"}, true, []string{"tail"}},
		{"long line split", []string{long + "\n"}, false, []string{long[:executor.MaxLogLine], "xxxxxxxxxx"}},
		{"long partial split", []string{long}, false, []string{long[:executor.MaxLogLine]}},
		{"empty line", []string{"\n"}, false, []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			envs := executor.SplitLines(tt.chunks, tt.flush)
			var got []string
			for _, e := range envs {
				got = append(got, e.Line)
				if e.Source != "app/web/0" || e.Stream != "stdout" || e.App != "a" {
					t.Fatalf("envelope %+v lacks source, stream or app", e)
				}
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
				t.Fatalf("got %d lines %.40q, want %d lines %.40q", len(got), got, len(tt.want), tt.want)
			}
		})
	}
}

func FuzzLineSplitting(f *testing.F) {
	f.Add("a\nb", "c\r\n")
	f.Add(strings.Repeat("y", 100), "\n\n")
	f.Fuzz(func(t *testing.T, a, b string) {
		envs := executor.SplitLines([]string{a, b}, true)
		total := 0
		for _, e := range envs {
			if len(e.Line) > executor.MaxLogLine {
				t.Fatalf("line of %d bytes, max %d", len(e.Line), executor.MaxLogLine)
			}
			if strings.Contains(e.Line, "\n") {
				t.Fatalf("line contains a newline")
			}
			total += len(e.Line)
		}
		if total > len(a)+len(b) {
			t.Fatalf("more output than input")
		}
	})
}
