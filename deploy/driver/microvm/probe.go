package microvm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/deploy/driver"
)

// probeResult is what a probe measured, cached per kernel, QEMU and
// initramfs in ProbeDir.
type probeResult struct {
	Accel    Acceleration  `json:"accel"`
	KVMError string        `json:"kvm_error,omitempty"` // why KVM was not chosen
	Boot     time.Duration `json:"boot_ns"`             // QEMU's start until the probe's command ran, under Accel
}

// KVMProbeTimeout bounds the probe boot under KVM, where a guest that
// hangs early is the expected failure on nested hosts.
const KVMProbeTimeout = 20 * time.Second

// probe sets d.accel: from the cache when this kernel, QEMU and initramfs
// were probed before, else by booting a guest that runs "exit 0" under KVM
// (when /dev/kvm opens) and, failing that, under TCG.
func (d *Driver) probe(ctx context.Context) error {
	key, err := d.probeKey()
	if err != nil {
		return api.Errorf(api.EUnavailable, "microvm driver: %v", err)
	}
	cache := filepath.Join(d.cfg.ProbeDir, "probe-"+key+".json")
	if b, err := os.ReadFile(cache); err == nil {
		var r probeResult
		if json.Unmarshal(b, &r) == nil && (r.Accel == AccelKVM || r.Accel == AccelTCG) {
			d.accel = r.Accel
			d.log.Info("microvm.probe_cached", "accel", r.Accel, "kvm_error", r.KVMError, "boot", r.Boot)
			return nil
		}
	}
	var r probeResult
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err != nil {
		r.KVMError = err.Error()
	} else {
		f.Close()
		boot, err := d.probeBoot(ctx, AccelKVM, KVMProbeTimeout, 1)
		if err == nil {
			r.Accel, r.Boot = AccelKVM, boot
		} else {
			r.KVMError = err.Error()
			d.log.Info("microvm.kvm_unusable", "err", err)
		}
	}
	if r.Accel == "" {
		boot, err := d.probeBoot(ctx, AccelTCG, d.cfg.BootTimeout, d.cfg.BootAttempts)
		if err != nil {
			return api.Errorf(api.EUnavailable, "microvm driver: a probe guest boots under neither KVM (%s) nor TCG: %v", r.KVMError, err)
		}
		r.Accel, r.Boot = AccelTCG, boot
	}
	d.accel, d.boot = r.Accel, r.Boot
	if err := writeProbe(cache, r); err != nil {
		d.log.Warn("microvm.probe_not_cached", "path", cache, "err", err)
	}
	d.log.Info("microvm.probed", "accel", r.Accel, "kvm_error", r.KVMError, "boot", r.Boot)
	return nil
}

// writeProbe caches r at path through a rename, so that executors of other
// data dirs sharing ProbeDir never read half a file.
func writeProbe(path string, r probeResult) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".probe-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// probeKey names what a probe result depends on.
func (d *Driver) probeKey() (string, error) {
	h := sha256.New()
	for _, p := range []string{d.cfg.Kernel, d.cfg.QEMU} {
		fi, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d %d\n", p, fi.Size(), fi.ModTime().UnixNano())
	}
	fmt.Fprintln(h, filepath.Base(d.base), d.kernelArgs(AccelTCG), d.cfg.MachineOptions, d.cfg.CPU)
	return hex.EncodeToString(h.Sum(nil)[:8]), nil
}

// probeBoot boots a guest running "exit 0" under accel, waits for its exit
// 0, and returns how long its (last) boot took until the command started.
func (d *Driver) probeBoot(ctx context.Context, accel Acceleration, timeout time.Duration, attempts int) (time.Duration, error) {
	saved := d.cfg
	d.accel, d.cfg.BootTimeout, d.cfg.BootAttempts = accel, timeout, attempts
	defer func() { d.cfg = saved }()
	dir, err := os.MkdirTemp(d.cfg.StateDir, "probe-app-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	id := fmt.Sprintf("probe-%d", os.Getpid())
	defer d.Destroy(context.Background(), id)
	if _, err := d.Start(ctx, &driver.Spec{ID: id, Dir: dir, Command: "exit 0", MemoryMB: d.cfg.MinMemoryMB}); err != nil {
		return 0, err
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := d.Wait(wctx, id)
	if err != nil {
		return 0, fmt.Errorf("the probe guest did not exit within %s", timeout)
	}
	if res.ExitCode != 0 || res.Err != nil {
		return 0, fmt.Errorf("the probe guest ended with %+v", res)
	}
	v, err := d.get(id)
	if err != nil {
		return 0, err
	}
	return v.booted, nil
}
