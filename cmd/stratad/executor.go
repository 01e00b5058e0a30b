package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/strata-paas/strata/api/bus"
	"github.com/strata-paas/strata/api/client"
	"github.com/strata-paas/strata/deploy/driver"
	"github.com/strata-paas/strata/deploy/driver/docker"
	"github.com/strata-paas/strata/deploy/driver/microvm"
	"github.com/strata-paas/strata/deploy/driver/process"
	"github.com/strata-paas/strata/deploy/executor"
)

// runExecutor is `stratad executor`.
func runExecutor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("executor", stderr)
	data := fs.String("data", defaultDataDir()+"/executor", "executor data dir (droplet cache, instances, node id)")
	natsURL := fs.String("nats", "nats://127.0.0.1:4222", "NATS URL, or several servers of a cluster comma-separated")
	ctrlURL := fs.String("controller", "http://127.0.0.1:7070", "controller API URL (droplets are fetched from it)")
	tokenFile := fs.String("token-file", "", "file holding the executor credential for the controller, <data>/executor.token of the controller (or set STRATA_TOKEN)")
	token := fs.String("token", "", "API token for the controller")
	drivers := fs.String("drivers", "", "drivers to enable, comma-separated: process, docker, microvm; default: every driver that works on this host (microvm: when QEMU, the guest kernel and strata-guest-init next to stratad are there and a probe guest boots)")
	substrate := fs.String("substrate", "auto", "auto, metal or vm")
	labels := fs.String("labels", "", "node labels: key=value,key2=value2")
	nodeID := fs.String("node-id", "", "stable node id (default: generated once and kept in the data dir)")
	advertise := fs.String("advertise", "127.0.0.1", "host routers use to reach this node's instances")
	stopOnExit := fs.Bool("stop-on-exit", false, "stop this node's instances when the executor exits (default: leave them running to be re-attached on restart)")
	tuning := addInstanceTuning(fs)
	pnet := addProcessNet(fs)
	log, err := parseRole(fs, args, stderr, "info")
	if err != nil {
		return err
	}
	switch *substrate {
	case "auto", "metal", "vm":
	default:
		return fmt.Errorf("bad --substrate %q — use auto, metal or vm", *substrate)
	}
	lbls, err := parseLabels(*labels)
	if err != nil {
		return err
	}
	cfg := executor.Config{
		NodeID:        *nodeID,
		DataDir:       *data,
		AdvertiseHost: *advertise,
		Substrate:     *substrate,
		Labels:        lbls,
		StopOnExit:    *stopOnExit,
		Logger:        log.With("component", "executor"),
	}
	if err := tuning.apply(&cfg); err != nil {
		return err
	}
	tok, err := readToken(*token, *tokenFile)
	if err != nil {
		return err
	}
	if cfg.NodeID == "" {
		// The docker driver labels containers with the node id.
		if cfg.NodeID, err = executor.LoadNodeID(*data); err != nil {
			return err
		}
	}
	drvs, err := openDrivers(ctx, *drivers, driverEnv{dataDir: *data, nodeID: cfg.NodeID, advertise: *advertise, processNet: pnet, log: log})
	if err != nil {
		return err
	}
	// The executor credential also opens the controller's NATS server, as
	// this node's user (docs/tenancy.md, "The bus").
	conn, err := bus.Connect(ctx, *natsURL, bus.Options{Name: "executor", User: bus.ExecutorUser(cfg.NodeID), Password: tok, Logger: log.With("component", "bus")})
	if err != nil {
		return err
	}
	defer conn.Close()
	ex, err := executor.New(cfg, conn, client.New(*ctrlURL, tok), drvs...)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Strata executor %s: node %s\n", version, ex.NodeID())
	return ex.Run(ctx)
}

// driverEnv is what opening a driver needs.
type driverEnv struct {
	dataDir, nodeID, advertise string
	processNet                 *processNet // nil: the process driver's defaults
	routers                    listenAddrs // the node's own router's listeners (the microcloud's)
	log                        *slog.Logger
}

// driverNames are the drivers `--drivers` knows, in the order they are
// opened.
var driverNames = []string{"process", "docker", "microvm"}

// openDrivers opens the drivers named in list (comma-separated), or, when
// list is empty, every driver that works on this host (a driver that cannot
// start is then left out, and the reason logged).
func openDrivers(ctx context.Context, list string, env driverEnv) ([]driver.Driver, error) {
	auto := strings.TrimSpace(list) == ""
	want := map[string]bool{}
	if auto {
		for _, n := range driverNames {
			want[n] = true
		}
	} else {
		for n := range strings.SplitSeq(list, ",") {
			n = strings.TrimSpace(n)
			known := false
			for _, k := range driverNames {
				known = known || k == n
			}
			if !known {
				return nil, fmt.Errorf("--drivers: unknown driver %q — use process, docker or microvm", n)
			}
			want[n] = true
		}
	}
	var out []driver.Driver
	for _, name := range driverNames {
		if !want[name] {
			continue
		}
		d, err := openDriver(ctx, name, env)
		if err != nil {
			if auto {
				env.log.Info("executor.driver_unavailable", "driver", name, "reason", err.Error())
				continue
			}
			return nil, fmt.Errorf("--drivers: %s: %w", name, err)
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no driver works on this host — see the log for why")
	}
	return out, nil
}

// machineCache is the directory of this machine's user cache for what
// depends only on the machine (a microVM acceleration probe's result), so
// that every data dir shares it; "" (each data dir its own) when the user
// has no cache dir.
func machineCache(name string) string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "strata", name)
}

func openDriver(ctx context.Context, name string, env driverEnv) (driver.Driver, error) {
	switch name {
	case "process":
		cfg := process.Config{StateDir: filepath.Join(env.dataDir, "driver"), AdvertiseHost: env.advertise,
			Logger: env.log.With("component", "driver", "driver", name)}
		if env.processNet != nil {
			if err := env.processNet.apply(&cfg, env.routers...); err != nil {
				return nil, err
			}
		}
		return process.New(cfg)
	case "docker":
		return docker.New(ctx, docker.Config{NodeID: env.nodeID, AdvertiseHost: env.advertise, ImageDir: filepath.Join(env.dataDir, "images"),
			Logger: env.log.With("component", "driver", "driver", name)})
	case "microvm":
		// Fails at once when QEMU, the kernel or the guest init is missing;
		// else boots a probe guest (its result cached per kernel).
		return microvm.New(ctx, microvm.Config{StateDir: filepath.Join(env.dataDir, "microvm"), ProbeDir: machineCache("microvm"), AdvertiseHost: env.advertise,
			Logger: env.log.With("component", "driver", "driver", name)})
	}
	return nil, fmt.Errorf("the %s driver is not supported yet — use --drivers process, docker or microvm", name)
}
