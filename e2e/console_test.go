package e2e_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestConsole drives the web console (docs/console.md) in a real headless
// Chromium against a cluster with a pushed app: a wrong password is
// answered on the login page, a developer logs in and sees the app, its
// instance's node, substrate and isolation, scales it to 2 from the form
// and sees 2 running instances, sets a config var and rolls back to v1 from
// the releases list (the app then answers as release 3), sees an app log line and a live router
// line on the logs page, a form post without the CSRF token is refused,
// and after logout the browser is sent to the login page.
func TestConsole(t *testing.T) {
	require(t, "go", "chromium")
	c := startCluster(t)
	c.executor("node-web", t.TempDir(), "--substrate", "metal", "--stop-on-exit")
	c.cli.must("", "strata", "push", "webapp", "-p", copyDir(t, filepath.Join(repoRoot(), "examples", "hello-go")))
	waitBody(t, c.routerAddr, "webapp.localhost", helloBody, 60*time.Second)

	out := c.cli.must("", "strata", "users", "create", "dev")
	m := regexp.MustCompile(`(?m)^Password: (\S+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("users create printed no password:\n%s", out)
	}
	password := m[1]
	c.cli.must("", "strata", "users", "set-role", "dev", "space-developer", "--org", "default", "--space", "default")

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath("chromium"), chromedp.NoSandbox, chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancel()
	// The first Run starts the browser and must not carry a timeout (it
	// would stop the browser); every later step gets its own.
	if _, err := chromedp.Run(bctx, chromedp.Location()); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	page := func() string {
		ctx, cancel := context.WithTimeout(bctx, 10*time.Second)
		defer cancel()
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		return loc + ":\n" + tail(body, 3000)
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(bctx, 60*time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v\nat %s", what, err, page())
		}
	}
	eval := func(what, js string, opts ...chromedp.EvaluateOption) any {
		t.Helper()
		ctx, cancel := context.WithTimeout(bctx, 60*time.Second)
		defer cancel()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[any](js, opts...))
		if err != nil {
			t.Fatalf("%s: %v\nat %s", what, err, page())
		}
		return v
	}
	text := func(sel string) string {
		t.Helper()
		return fmt.Sprint(eval("read "+sel, fmt.Sprintf(`document.querySelector(%q).innerText`, sel)))
	}
	location := func() string { return fmt.Sprint(eval("read the location", `document.location.pathname`)) }
	// waitFor evaluates js (a boolean expression) until it is true.
	waitFor := func(what, js string, timeout time.Duration) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for eval(what, js) != true {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %s; at %s", what, timeout, page())
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	// shot writes a screenshot of the page to $STRATA_SCREENSHOTS/NAME.png
	// when that is set (docs/console.md, "Screenshots").
	shots := os.Getenv("STRATA_SCREENSHOTS")
	if shots != "" {
		do("set the window size", chromedp.EmulateViewport(1200, 800))
	}
	shot := func(name string) {
		t.Helper()
		if shots == "" {
			return
		}
		ctx, cancel := context.WithTimeout(bctx, 30*time.Second)
		defer cancel()
		b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err == nil {
			err = os.WriteFile(filepath.Join(shots, name+".png"), b, 0o644)
		}
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
	}
	// submit submits the form of the control sel and waits for the next
	// page's success message (the old page's messages are removed first, so
	// they cannot be mistaken for it) and returns it.
	submit := func(what, sel string) string {
		t.Helper()
		eval(what, `document.querySelectorAll(".flash").forEach(e => e.remove()); true`)
		do(what, chromedp.Submit(css(sel)), chromedp.WaitVisible(css(".flash.ok")))
		return text(".flash.ok")
	}

	do("open the console", chromedp.Navigate(c.apiURL+"/"), chromedp.WaitVisible(css("#username")))
	if loc := location(); loc != "/login" {
		t.Fatalf("a logged-out browser is at %s, want the login page", loc)
	}

	do("log in with a wrong password",
		chromedp.SendKeys(css("#username"), "dev"),
		chromedp.SendKeys(css("#password"), "not-the-password"),
		chromedp.Submit(css("#password")),
		chromedp.WaitVisible(css(".flash.bad")))
	shot("login")
	if got := text(".flash.bad"); !strings.Contains(got, "wrong user name or password") {
		t.Fatalf("wrong password: the login page says %q", got)
	}

	do("log in",
		chromedp.SetValue(css("#password"), password),
		chromedp.Submit(css("#password")),
		chromedp.WaitVisible(css("#apps")))
	shot("apps")
	if got := text("#apps"); !strings.Contains(got, "webapp") || !strings.Contains(got, "1 / 1") {
		t.Fatalf("the apps list shows %q, want webapp with 1 / 1 running", got)
	}

	do("open the app", chromedp.Click(css(`#apps a[href$="/apps/webapp"]`)), chromedp.WaitVisible(css("#instances")))
	got := text("#instances")
	for _, want := range []string{"web/0", "running", "node-web", "metal", "process"} {
		if !strings.Contains(got, want) {
			t.Errorf("the instances table lacks %q:\n%s", want, got)
		}
	}

	status := eval("post a form without the CSRF token",
		`fetch(location.pathname + "/restart", {method: "POST", body: new URLSearchParams({})}).then(r => r.status)`,
		chromedp.EvalAwaitPromise)
	if status != float64(403) {
		t.Errorf("a form post without the CSRF token answered %v, want 403", status)
	}

	do("scale to 2", chromedp.SetValue(css("#instances-web"), "2"))
	if got := submit("scale to 2", "#instances-web"); !strings.Contains(got, "scaled web to 2 instances") {
		t.Fatalf("after scaling the page says %q", got)
	}
	// The table refreshes itself (console.js) until both instances run.
	waitFor("2 running instances on the app page",
		`document.querySelectorAll('#instances tr.instance[data-state="running"]').length === 2`, 90*time.Second)
	shot("app")

	do("set a config var", chromedp.SendKeys(css("#env-name"), "GREETING"), chromedp.SendKeys(css("#env-value"), "hi"))
	if got := submit("set a config var", "#env-name"); !strings.Contains(got, "release v2") {
		t.Fatalf("after setting GREETING the page says %q, want release v2", got)
	}
	do("roll back to v1 from the releases list",
		chromedp.Click(css(`#releases a[href$="/rollback?version=1"]`)),
		chromedp.WaitVisible(css(`main form button[type="submit"]`)))
	if got := text("h1"); !strings.Contains(got, "Roll back webapp to v1?") {
		t.Fatalf("the rollback confirmation says %q", got)
	}
	if got := submit("confirm the rollback", `main form button[type="submit"]`); !strings.Contains(got, "rolled back to v1 as release v3") {
		t.Fatalf("after the rollback the page says %q", got)
	}
	waitBody(t, c.routerAddr, "webapp.localhost", "release 3)", 120*time.Second)

	do("open the logs", chromedp.Click(css(`nav.tabs a[href$="/logs"]`)), chromedp.WaitVisible(css("#log")))
	waitFor("an app line on the logs page", `document.getElementById("log").textContent.includes("hello listening on")`, 30*time.Second)
	waitFor("the logs page follows live", `!document.getElementById("live").hidden`, 30*time.Second)
	path := fmt.Sprintf("/console-live-%d", time.Now().UnixNano())
	deadline := time.Now().Add(60 * time.Second)
	for eval("look for the router line", fmt.Sprintf(`document.getElementById("log").textContent.includes("[router] GET %s")`, path)) != true {
		if time.Now().After(deadline) {
			t.Fatalf("no live router line for %s within 60s; the log shows:\n%s", path, tail(text("#log"), 3000))
		}
		if code, _, err := routerGet(c.routerAddr, "webapp.localhost", path); err != nil || code != 200 {
			t.Logf("GET %s through the router: %d %v", path, code, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	shot("logs")

	do("log out", chromedp.Click(css(".logout button")), chromedp.WaitVisible(css("#username")))
	do("open the apps after logout", chromedp.Navigate(c.apiURL+"/orgs/default/spaces/default/apps"), chromedp.WaitVisible(css("#username")))
	if loc := location(); loc != "/login" {
		t.Fatalf("after logout the apps page is at %s, want the login page", loc)
	}
}
