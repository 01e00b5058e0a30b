package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/strata-paas/strata/api/bus"
	"github.com/strata-paas/strata/api/client"
	"github.com/strata-paas/strata/deploy/driver/process"
	"github.com/strata-paas/strata/deploy/executor"
)

// runExecutor is `stratad executor`.
func runExecutor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("executor", stderr)
	data := fs.String("data", defaultDataDir()+"/executor", "executor data dir (droplet cache, instances, node id)")
	natsURL := fs.String("nats", "nats://127.0.0.1:4222", "NATS URL")
	ctrlURL := fs.String("controller", "http://127.0.0.1:7070", "controller API URL (droplets are fetched from it)")
	tokenFile := fs.String("token-file", "", "file holding an API token for the controller (or set STRATA_TOKEN)")
	token := fs.String("token", "", "API token for the controller")
	drivers := fs.String("drivers", "process", "drivers to enable (only process is supported yet)")
	substrate := fs.String("substrate", "auto", "auto, metal or vm")
	labels := fs.String("labels", "", "node labels: key=value,key2=value2")
	nodeID := fs.String("node-id", "", "stable node id (default: generated once and kept in the data dir)")
	advertise := fs.String("advertise", "127.0.0.1", "host routers use to reach this node's instances")
	stopOnExit := fs.Bool("stop-on-exit", false, "stop this node's instances when the executor exits (default: leave them running to be re-attached on restart)")
	tuning := addInstanceTuning(fs)
	log, err := parseRole(fs, args, stderr, "info")
	if err != nil {
		return err
	}
	if *drivers != "process" {
		return fmt.Errorf("--drivers %q: only the process driver is supported yet — use --drivers process", *drivers)
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
	drv, err := process.New(process.Config{StateDir: filepath.Join(*data, "driver"), Logger: log.With("component", "driver")})
	if err != nil {
		return err
	}
	conn, err := bus.Connect(ctx, *natsURL, bus.Options{Name: "executor", Logger: log.With("component", "bus")})
	if err != nil {
		return err
	}
	defer conn.Close()
	ex, err := executor.New(cfg, conn, client.New(*ctrlURL, tok), drv)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Strata executor %s: node %s\n", version, ex.NodeID())
	return ex.Run(ctx)
}
