package isolate_test

import (
	"os"
	"slices"
	"testing"

	"github.com/strata-paas/strata/deploy/driver/process/isolate"
)

func TestParseMountinfo(t *testing.T) {
	data := `22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda rw
35 22 0:30 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 22 0:31 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
37 22 0:32 / /mnt/with\040space rw - tmpfs my\134src rw,size=10m
garbage line
38 22 0:33 / /x rw -`
	got := isolate.ParseMountinfo(data)
	want := []isolate.Mount{
		{Point: "/", FSType: "ext4", Source: "/dev/vda", SuperOpts: []string{"rw"}},
		{Point: "/sys/fs/cgroup/memory", FSType: "cgroup", Source: "cgroup", SuperOpts: []string{"rw", "memory"}},
		{Point: "/sys/fs/cgroup/unified", FSType: "cgroup2", Source: "cgroup2", SuperOpts: []string{"rw"}},
		{Point: "/mnt/with space", FSType: "tmpfs", Source: `my\src`, SuperOpts: []string{"rw", "size=10m"}},
	}
	if len(got) != len(want) {
		t.Fatalf("ParseMountinfo = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].Point != want[i].Point || got[i].FSType != want[i].FSType || got[i].Source != want[i].Source ||
			!slices.Equal(got[i].SuperOpts, want[i].SuperOpts) {
			t.Errorf("mount %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func FuzzParseMountinfo(f *testing.F) {
	f.Add("22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda rw\n")
	f.Add(`1 2 3 4 /a\040b\ 6 - t s o`)
	f.Fuzz(func(t *testing.T, data string) {
		for _, m := range isolate.ParseMountinfo(data) {
			if m.FSType == "" {
				t.Fatalf("mount %+v without a type", m)
			}
		}
	})
}

func TestReadResult(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content string
		ok            bool
		want          isolate.Result
	}{
		{"exit", `{"exit_code":3}`, true, isolate.Result{ExitCode: 3}},
		{"signal", `{"exit_code":-1,"signal":"killed"}`, true, isolate.Result{ExitCode: -1, Signal: "killed"}},
		{"empty", ``, false, isolate.Result{}},
		{"torn", `{"exit_co`, false, isolate.Result{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := dir + "/" + tc.name
			if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, ok := isolate.ReadResult(p)
			if ok != tc.ok || (ok && got != tc.want) {
				t.Fatalf("ReadResult = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
	if _, ok := isolate.ReadResult(dir + "/missing"); ok {
		t.Fatal("ReadResult of a missing file is ok")
	}
}
