package httpapitest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/bus"
)

// Builder plays the build worker: it takes each build job from the queue,
// streams Output as staging log lines and stages it (or fails with Failure).
type Builder struct {
	mu      sync.Mutex
	jobs    []api.BuildJob
	output  []string
	failure string
}

// DefaultBuildOutput is what a Builder prints for each build.
var DefaultBuildOutput = []string{"-----> Detected fake buildpack", "-----> Compiled"}

// SetOutput sets the lines the next builds print.
func (b *Builder) SetOutput(lines ...string) {
	b.mu.Lock()
	b.output = lines
	b.mu.Unlock()
}

// Fail makes the next builds fail with reason after their output ("": they
// stage again).
func (b *Builder) Fail(reason string) {
	b.mu.Lock()
	b.failure = reason
	b.mu.Unlock()
}

// Jobs returns the build jobs taken so far, oldest first.
func (b *Builder) Jobs() []api.BuildJob {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.jobs)
}

func startBuilder(t testing.TB, conn *bus.Conn) *Builder {
	b := &Builder{output: DefaultBuildOutput}
	ctx, cancel := context.WithCancel(context.Background())
	// The test waits for the builds under way, not for the consumer:
	// ConsumeWork notices ctx only between fetches, which wait up to 2 s for
	// a job, and its last fetch touches nothing of the test.
	var builds sync.WaitGroup
	stopped := false
	t.Cleanup(func() {
		b.mu.Lock()
		stopped = true
		b.mu.Unlock()
		cancel()
		builds.Wait()
	})
	go func() {
		_ = conn.ConsumeWork(ctx, bus.WorkConfig{Stream: api.BuildJobsStream, Durable: "builders"}, func(ctx context.Context, data []byte, _ int) error {
			var job api.BuildJob
			if err := json.Unmarshal(data, &job); err != nil {
				return err
			}
			b.mu.Lock()
			if stopped {
				b.mu.Unlock()
				return errors.New("builder stopped")
			}
			builds.Add(1)
			defer builds.Done()
			b.jobs = append(b.jobs, job)
			output, failure := b.output, b.failure
			b.mu.Unlock()
			b.build(ctx, conn, job, output, failure)
			return nil
		})
	}()
	return b
}

func (b *Builder) build(ctx context.Context, conn *bus.Conn, job api.BuildJob, output []string, failure string) {
	send := func(r api.BuildResult) {
		r.Version, r.BuildID = api.MessageVersion, job.BuildID
		for ctx.Err() == nil {
			if _, err := bus.Request[api.BuildResult, struct{}](ctx, conn, api.SubjectBuildResult, &r); err == nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	send(api.BuildResult{State: api.BuildStaging})
	for _, l := range output {
		_ = conn.Publish(api.SubjectLogs(job.AppID), api.LogEnvelope{
			Time: time.Now(), AppID: job.AppID, App: job.AppName, Source: api.LogSourceStaging, BuildID: job.BuildID, Line: l,
		})
	}
	if failure != "" {
		send(api.BuildResult{State: api.BuildFailed, Failure: api.FailCompile, Reason: failure})
		return
	}
	// The process types: the manifest's Procfile, else one web process.
	procs := map[string]string{}
	for _, l := range strings.Split(job.Procfile, "\n") {
		if typ, cmd, ok := strings.Cut(l, ":"); ok {
			procs[strings.TrimSpace(typ)] = strings.TrimSpace(cmd)
		}
	}
	if len(procs) == 0 {
		procs[api.ProcessWeb] = "./app"
	}
	// The droplet is the source itself: nothing runs it.
	send(api.BuildResult{State: api.BuildStaged, DropletBlob: job.SourceBlob, Buildpack: "fake", Processes: procs})
}

// NodeID is the ID of an Env's Node.
const NodeID = "node-1"

// Node plays an executor: it heartbeats, reports the instances it is told to
// start as running (nothing runs) and runs tasks with /bin/sh -c on this
// machine, streaming their output and exit code.
type Node struct {
	id        string
	conn      *bus.Conn
	mu        sync.Mutex
	instances map[string]api.InstanceReport
	hb        api.NodeHeartbeat
	hold      bool
}

// Hold makes the instances started from now on stay starting (false: they
// run at once, the default).
func (x *Node) Hold(on bool) {
	x.mu.Lock()
	x.hold = on
	x.mu.Unlock()
}

// Describe sets what the next heartbeats say about the node: substrate,
// isolations, capacity and acceleration.
func (x *Node) Describe(sub api.Substrate, isolations []api.Isolation, capacity api.Capacity, accel string) {
	x.mu.Lock()
	x.hb.Substrate, x.hb.Isolations, x.hb.Capacity, x.hb.Accel = sub, isolations, capacity, accel
	x.mu.Unlock()
}

func startNode(t testing.TB, conn *bus.Conn, id string) *Node {
	x := &Node{id: id, conn: conn, instances: map[string]api.InstanceReport{}, hb: api.NodeHeartbeat{
		Substrate: api.SubstrateVM, Isolations: []api.Isolation{api.IsolationProcess},
		Capacity: api.Capacity{MemoryMB: 16384, CPUs: 4},
	}}
	ctx, cancel := context.WithCancel(context.Background())
	var tasks sync.WaitGroup
	sub, err := bus.Handle(conn, api.SubjectNodeCommand(id), "", func(_ context.Context, cmd *api.NodeCommand) (*api.NodeCommandReply, error) {
		x.command(ctx, &tasks, cmd)
		return &api.NodeCommandReply{Version: api.MessageVersion}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done; tasks.Wait(); _ = sub.Unsubscribe() })
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			x.heartbeat()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return x
}

func (x *Node) heartbeat() {
	x.mu.Lock()
	hb := x.hb
	hb.Version, hb.NodeID, hb.Time, hb.Interval = api.MessageVersion, x.id, time.Now(), 50*time.Millisecond
	hb.Instances = []api.InstanceReport{}
	for _, in := range x.instances {
		hb.Instances = append(hb.Instances, in)
	}
	x.mu.Unlock()
	_ = x.conn.Publish(api.SubjectNodeHeartbeat, hb)
}

func (x *Node) report(rep api.InstanceReport) {
	_ = x.conn.Publish(api.SubjectInstanceEvent, api.InstanceEvent{Version: api.MessageVersion, NodeID: x.id, Instance: rep, Time: time.Now()})
}

func (x *Node) command(ctx context.Context, tasks *sync.WaitGroup, cmd *api.NodeCommand) {
	x.mu.Lock()
	defer x.mu.Unlock()
	switch cmd.Kind {
	case api.CmdStart:
		s := *cmd.Start
		rep := api.InstanceReport{InstanceID: s.InstanceID, AppID: s.AppID, Process: s.Process, Index: s.Index, Release: s.Release,
			State: api.InstanceRunning, Port: 40000 + len(x.instances), Routes: s.Routes}
		if x.hold {
			rep.State, rep.Port = api.InstanceStarting, 0
		}
		x.instances[s.InstanceID] = rep
		go x.report(rep)
	case api.CmdRoutes:
		if rep, ok := x.instances[cmd.InstanceID]; ok {
			rep.Routes = cmd.Routes
			x.instances[cmd.InstanceID] = rep
		}
	case api.CmdStop:
		if rep, ok := x.instances[cmd.InstanceID]; ok {
			delete(x.instances, cmd.InstanceID)
			rep.State = api.InstanceStopped
			go x.report(rep)
		}
	case api.CmdRun:
		s := *cmd.Start
		tasks.Add(1)
		go func() {
			defer tasks.Done()
			x.runTask(ctx, s)
		}()
	}
}

// runTask runs a task's command with its environment and publishes each
// output line and the exit code.
func (x *Node) runTask(ctx context.Context, s api.InstanceSpec) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sh := exec.CommandContext(ctx, "/bin/sh", "-c", s.Command)
	for k, v := range s.Env {
		sh.Env = append(sh.Env, k+"="+v)
	}
	stdout, _ := sh.StdoutPipe()
	stderr, _ := sh.StderrPipe()
	var lines sync.WaitGroup
	stream := func(name string, r io.Reader) {
		defer lines.Done()
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			_ = x.conn.Publish(api.SubjectLogs(s.AppID), api.LogEnvelope{Time: time.Now(), AppID: s.AppID, App: s.AppName, Source: "task/" + s.InstanceID, Stream: name, Line: sc.Text()})
		}
	}
	code := -1
	if err := sh.Start(); err == nil {
		lines.Add(2)
		go stream("stdout", stdout)
		go stream("stderr", stderr)
		lines.Wait()
		err = sh.Wait()
		var exit *exec.ExitError
		switch {
		case err == nil:
			code = 0
		case errors.As(err, &exit):
			code = exit.ExitCode()
		}
	}
	_ = x.conn.Flush(ctx)
	_ = x.conn.Publish(api.SubjectTaskExit(s.InstanceID), api.InstanceEvent{Version: api.MessageVersion, ExitCode: &code, Reason: "exited with code " + strconv.Itoa(code)})
}
