package e2e_test

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-paas/strata/api/bus"
)

// postgresSchema makes a fresh schema in the STRATA_TEST_POSTGRES database
// with psql, dropped when the test ends, and returns the DSN that uses it.
// In CI (CI or STRATA_REQUIRE set) a missing database fails the test.
func postgresSchema(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("STRATA_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("CI") != "" || os.Getenv("STRATA_REQUIRE") != "" {
			t.Fatal("STRATA_TEST_POSTGRES is unset — set it to a postgres:// URL of a database the test may create schemas in")
		}
		t.Skip("STRATA_TEST_POSTGRES is unset")
	}
	require(t, "psql")
	schema := "strata_e2e_" + strings.ReplaceAll(uuid.NewString(), "-", "")
	psql := func(sql string) error {
		out, err := exec.Command("psql", dsn, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql).CombinedOutput()
		if err != nil {
			t.Logf("psql %q: %s", sql, out)
		}
		return err
	}
	if err := psql("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() { _ = psql("DROP SCHEMA " + schema + " CASCADE") })
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("STRATA_TEST_POSTGRES is not a URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// runningRx matches a running instance in `strata app --json`.
var runningRx = regexp.MustCompile(`"state":\s*"running"`)

// controllers is n controllers on one PostgreSQL schema and one NATS
// server (blobs in its object store), a router and an executor, each a
// process; the API answers at one (the router's api.localhost).
type controllers struct {
	ctls       []ctl
	routerAddr string
	one        string // the one address: http://api.localhost:<router port>
	token      string // the admin token file
	router     *proc
	executor   *proc
}

type ctl struct {
	p   *proc
	id  string
	api string
}

// startControllers starts n controllers with leaseTTL ("": the default).
func startControllers(t testing.TB, n int, leaseTTL string) *controllers {
	t.Helper()
	require(t, "go", "git")
	dsn := postgresSchema(t)
	srv, err := bus.StartServer(bus.ServerConfig{Host: "127.0.0.1", Port: 0, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	natsURL := srv.ClientURL()
	creds := t.TempDir()
	cs := &controllers{routerAddr: freeAddr(t), token: filepath.Join(creds, "admin.token")}
	_, routerPort, _ := strings.Cut(cs.routerAddr, ":")
	cs.one = "http://api.localhost:" + routerPort
	common := []string{"--nats", natsURL, "--database", dsn, "--credentials-dir", creds,
		"--router-port", routerPort, "--blobs", "nats"}
	if leaseTTL != "" {
		common = append(common, "--lease-ttl", leaseTTL)
	}
	initOut, err := exec.Command(filepath.Join(binDir, "stratad"), append([]string{"controller", "--init-only",
		"--data", t.TempDir(), "--api-addr", "127.0.0.1:0"}, common...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("stratad controller --init-only: %v\n%s", err, initOut)
	}
	for i := range n {
		id := fmt.Sprintf("c%d", i+1)
		p := start(t, "stratad controller "+id, nil, "stratad", append([]string{"controller",
			"--data", t.TempDir(), "--api-addr", "127.0.0.1:0", "--controller-id", id}, common...)...)
		cs.ctls = append(cs.ctls, ctl{p: p, id: id, api: p.waitLine(`API:\s+(http://\S+)`, 60*time.Second)[1]})
	}
	cs.router = start(t, "stratad router", nil, "stratad", "router", "--nats", natsURL, "--listen", cs.routerAddr)
	cs.router.waitLine(`listening on`, 30*time.Second)
	cs.executor = start(t, "stratad executor", nil, "stratad", "executor", "--nats", natsURL,
		"--controller", cs.one, "--token-file", filepath.Join(creds, "executor.token"),
		"--data", t.TempDir(), "--stop-on-exit")
	cs.executor.waitLine(`node \S+`, 30*time.Second)
	// Every controller's api.localhost registration has reached the router.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if strings.Count(cs.router.stderr.String(), "msg=route.registered component=registry uri=api.localhost") >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the router did not learn api.localhost from %d controllers", n)
		}
	}
	return cs
}

// leader returns the index of the controller that logged taking the lease
// last, waiting up to 30 s for one.
func (cs *controllers) leader(t testing.TB) int {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for i, k := range cs.ctls {
			if k.p.logged("msg=leader.acquired") {
				return i
			}
		}
	}
	t.Fatal("no controller logged leader.acquired")
	return -1
}

// TestControllersShareOneAddress runs two controllers on one PostgreSQL
// database and one NATS server (blobs in its object store), a router and an
// executor, as separate processes: users reach the API through the
// router's api.localhost, an app pushed through one controller is read and
// git-pushed through the other, and when the leader is killed the other
// leads and a scale made through the one address completes
// (docs/architecture.md, "Leader lease", "One API address").
func TestControllersShareOneAddress(t *testing.T) {
	cs := startControllers(t, 2, "3s")
	ctls, routerAddr, one := cs.ctls, cs.routerAddr, cs.one
	if code, body, err := routerGet(routerAddr, "api.localhost", "/v1/info"); err != nil || code != 200 {
		t.Fatalf("api.localhost via the router: %d %q %v", code, tail(body, 200), err)
	}

	token := cs.token
	c1, c2, c := newCLI(t), newCLI(t), newCLI(t)
	c1.must("", "strata", "login", "--api", ctls[0].api, "--token-file", token)
	c2.must("", "strata", "login", "--api", ctls[1].api, "--token-file", token)
	c.must("", "strata", "login", "--api", one, "--token-file", token)

	// Push through c1, read through c2.
	app := copyDir(t, filepath.Join(repoRoot(), "examples", "hello-go"))
	out := c1.must("", "strata", "push", "shared", "-p", app)
	t.Logf("push through c1:\n%s", out)
	waitBody(t, routerAddr, "shared.localhost", helloBody, 60*time.Second)
	if out := c2.must("", "strata", "app", "shared", "--json"); len(runningRx.FindAllString(out, -1)) != 1 {
		t.Fatalf("strata app through c2 does not show the app running:\n%s", out)
	}

	// git push through c2 (its own repository of the app) deploys v2.
	gitRepo(t, c2, app)
	c2.must(app, "strata", "git-remote", "shared")
	out = c2.must(app, "git", "push", "strata", "main")
	t.Logf("git push through c2:\n%s", out)
	if !regexp.MustCompile(`v2\b`).MatchString(out) {
		t.Errorf("git push through c2 did not release v2:\n%s", out)
	}
	waitBody(t, routerAddr, "shared.localhost", helloBody, 60*time.Second)

	// Kill the leader; the other takes over and a scale through the one
	// address completes.
	leader := cs.leader(t)
	survivor := ctls[1-leader]
	t.Logf("killing the leader %s; %s survives", ctls[leader].id, survivor.id)
	ctls[leader].p.kill()
	for deadline := time.Now().Add(30 * time.Second); !survivor.p.logged("msg=leader.acquired"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not take the lead after the leader was killed", survivor.id)
		}
	}
	out = c.must("", "strata", "scale", "shared", "--instances", "2")
	t.Logf("scale through %s:\n%s", one, out)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		out := c.must("", "strata", "app", "shared", "--json")
		if len(runningRx.FindAllString(out, -1)) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("two instances not running after the takeover:\n%s", out)
		}
	}
	waitBody(t, routerAddr, "shared.localhost", helloBody, 30*time.Second)
	cs.executor.stop(30 * time.Second)
	cs.router.stop(15 * time.Second)
	survivor.p.stop(15 * time.Second)
}
