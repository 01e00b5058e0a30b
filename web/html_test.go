package web_test

import (
	"html"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

var (
	titleRe   = regexp.MustCompile(`<title>([^<]*)</title>`)
	hrefRe    = regexp.MustCompile(`href="(/[^"]*)"`)
	formRe    = regexp.MustCompile(`<form\b[^>]*method="(get|post)"[^>]*action="(/[^"]*)"`)
	controlRe = regexp.MustCompile(`<(input|select|textarea)\b([^>]*)>`)
	attrRe    = regexp.MustCompile(`\b(id|type|aria-label)="([^"]*)"`)
	labelRe   = regexp.MustCompile(`<label for="([^"]+)"`)
)

// TestPagesAreWellFormed crawls every internal link and form target from
// the home page: each page has a title, every visible control a label, and
// no link or form leads to a page that does not exist.
func TestPagesAreWellFormed(t *testing.T) {
	crawl(t, session("t"))
	if seen := crawl(t, adminSession()); !seen["/users"] || !seen["/users/bob/delete"] || !seen["/account"] {
		t.Errorf("an admin's crawl did not reach the users, delete and account pages: %v", seen)
	}
}

// crawl checks every page reachable with session ck and returns the paths.
func crawl(t *testing.T, ck *http.Cookie) map[string]bool {
	c, _ := newConsole(t)
	get := func(path string) (int, string, string) {
		r := httptest.NewRequest("GET", path, nil)
		r.AddCookie(ck)
		res, body := do(c, r)
		return res.StatusCode, res.Header.Get("Location"), body
	}
	seen := map[string]bool{}
	queue := []string{"/", "/login"}
	pages := 0
	for len(queue) > 0 && pages < 100 {
		path := queue[0]
		queue = queue[1:]
		if seen[path] {
			continue
		}
		seen[path] = true
		status, loc, body := get(path)
		if status == http.StatusSeeOther {
			queue = append(queue, loc)
			continue
		}
		if status != http.StatusOK {
			t.Errorf("GET %s: status %d, want 200 (linked from a page)", path, status)
			continue
		}
		if !strings.HasPrefix(path, "/static/") {
			pages++
			checkPage(t, path, body)
		}
		for _, m := range formRe.FindAllStringSubmatch(body, -1) {
			checkForm(t, c, ck, path, m[1], html.UnescapeString(m[2]))
		}
		for _, m := range hrefRe.FindAllStringSubmatch(body, -1) {
			u := html.UnescapeString(m[1])
			if !seen[u] {
				queue = append(queue, u)
			}
		}
	}
	if pages < 5 {
		t.Fatalf("crawled only %d pages (%v), want the login, apps, app, rollback, logs, members and account pages", pages, seen)
	}
	return seen
}

func checkPage(t *testing.T, path, body string) {
	t.Helper()
	if m := titleRe.FindStringSubmatch(body); m == nil || strings.TrimSpace(m[1]) == "" {
		t.Errorf("%s has no title", path)
	}
	labels := map[string]bool{}
	for _, m := range labelRe.FindAllStringSubmatch(body, -1) {
		labels[m[1]] = true
	}
	for _, m := range controlRe.FindAllStringSubmatch(body, -1) {
		attrs := map[string]string{}
		for _, a := range attrRe.FindAllStringSubmatch(m[2], -1) {
			attrs[a[1]] = a[2]
		}
		if attrs["type"] == "hidden" || attrs["aria-label"] != "" || labels[attrs["id"]] && attrs["id"] != "" {
			continue
		}
		t.Errorf("%s: control %s has no label", path, m[0])
	}
}

// checkForm checks that a form's target exists: a GET form's page answers
// (400 for the missing fields is fine), a POST form's handler refuses the
// post without its fields' CSRF token rather than not being there.
func checkForm(t *testing.T, c http.Handler, ck *http.Cookie, page, method, action string) {
	t.Helper()
	r := httptest.NewRequest(strings.ToUpper(method), action, nil)
	r.AddCookie(ck)
	res, _ := do(c, r)
	want := map[string][]int{"get": {200, 303, 400}, "post": {403}}[method]
	for _, w := range want {
		if res.StatusCode == w {
			return
		}
	}
	t.Errorf("%s: form %s %s answers %d, want one of %v", page, method, action, res.StatusCode, want)
}
