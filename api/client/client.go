package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"

	"github.com/strata-paas/strata/api"
)

// Client talks to one Strata API with one token.
type Client struct {
	base   string
	token  string
	target api.Target
	hc     *http.Client
}

// New returns a client of the API at baseURL (e.g. http://127.0.0.1:7070)
// that authenticates with token ("" for none).
func New(baseURL, token string) *Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = dialLocalhost(t.DialContext)
	return &Client{
		base:  strings.TrimRight(baseURL, "/"),
		token: token,
		hc:    &http.Client{Transport: t},
	}
}

// dialLocalhost dials names under .localhost (the microcloud's
// api.localhost, apps' <app>.localhost) on the loopback address when the
// resolver does not know them, as RFC 6761 lets and browsers and curl do;
// a name the resolver knows (a network alias inside a container network)
// and every other address are dialled as given.
func dialLocalhost(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		var dnsErr *net.DNSError
		if err != nil && errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			if host, port, serr := net.SplitHostPort(addr); serr == nil && IsLocalhost(host) {
				return dial(ctx, network, net.JoinHostPort("127.0.0.1", port))
			}
		}
		return conn, err
	}
}

// IsLocalhost reports whether host is localhost or a name under it.
func IsLocalhost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// WithTarget returns a copy of c whose requests act in the org and space of
// t (empty names: the default org and space).
func (c *Client) WithTarget(t api.Target) *Client {
	cp := *c
	cp.target = t
	return &cp
}

// BaseURL returns the API address the client talks to.
func (c *Client) BaseURL() string { return c.base }

// request is one API call.
type request struct {
	method  string
	path    string // escaped path, with query
	body    io.Reader
	size    int64 // Content-Length when > 0
	ctype   string
	headers map[string]string
}

// do sends r and returns the response of a 2xx answer; other answers become
// *api.Error values.
func (c *Client) do(ctx context.Context, r request) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, r.method, c.base+r.path, r.body)
	if err != nil {
		return nil, api.Errorf(api.EInvalid, "bad API address %q: %v — check --api or STRATA_API", c.base, err)
	}
	if r.size > 0 {
		req.ContentLength = r.size
	}
	if r.ctype != "" {
		req.Header.Set("Content-Type", r.ctype)
	}
	for k, v := range r.headers {
		req.Header.Set(k, v)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.target.Org != "" {
		req.Header.Set(api.HeaderOrg, c.target.Org)
	}
	if c.target.Space != "" {
		req.Header.Set(api.HeaderSpace, c.target.Space)
	}
	req.Header.Set("Accept", "application/json")
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, err)
	}
	if res.StatusCode >= 300 {
		defer res.Body.Close()
		return nil, decodeError(res)
	}
	return res, nil
}

// transportError explains a failure to talk to the API at all.
func (c *Client) transportError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return api.Errorf(api.EUnavailable, "cannot reach the Strata API at %s — is stratad running? (make run)", c.base)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return api.Errorf(api.EUnavailable, "cannot resolve the host of the Strata API at %s — check --api or STRATA_API", c.base)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return api.Errorf(api.EUnavailable, "cannot talk to the Strata API at %s: %v — check that stratad is running and reachable", c.base, err)
}

// decodeError turns a non-2xx answer into an *api.Error.
func decodeError(res *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	var eb struct {
		Error *api.Error `json:"error"`
	}
	if json.Unmarshal(body, &eb) == nil && eb.Error != nil && eb.Error.Code != "" {
		return eb.Error
	}
	msg := strings.TrimSpace(string(body))
	if msg == "" || len(msg) > 200 || !isText(msg) {
		msg = http.StatusText(res.StatusCode)
	}
	return api.Errorf(codeOfStatus(res.StatusCode), "the API answered %d: %s", res.StatusCode, strings.ToLower(msg))
}

func isText(s string) bool {
	for _, r := range s {
		if r < ' ' && r != '\n' && r != '\t' {
			return false
		}
	}
	return true
}

// getJSON GETs path and decodes the JSON answer into out.
func (c *Client) getJSON(ctx context.Context, path string, out any) error {
	return c.call(ctx, request{method: http.MethodGet, path: path}, out)
}

// call sends r and decodes a JSON answer into out (nil: discard).
func (c *Client) call(ctx context.Context, r request, out any) error {
	res, err := c.do(ctx, r)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, res.Body)
		return nil
	}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return api.Errorf(api.EInternal, "cannot decode the API's answer to %s %s: %v — check that %s is a Strata API", r.method, r.path, err, c.base)
	}
	return nil
}

func jsonBody(v any) (io.Reader, int64) {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b), int64(len(b))
}

// page is one page of a list answer.
type page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// list fetches every page of a paginated list.
func list[T any](ctx context.Context, c *Client, path string) ([]T, error) {
	var all []T
	cursor := ""
	for {
		q := url.Values{"limit": {"1000"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var p page[T]
		if err := c.getJSON(ctx, path+"?"+q.Encode(), &p); err != nil {
			return nil, err
		}
		all = append(all, p.Items...)
		if p.NextCursor == "" || p.NextCursor == cursor {
			return all, nil
		}
		cursor = p.NextCursor
	}
}

func appPath(name string, rest string) string {
	return "/v1/apps/" + url.PathEscape(name) + rest
}
