package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/strata-paas/strata/api"
)

// LogOptions select log lines.
type LogOptions struct {
	Recent int    // how many recent lines first (0 = server default, 100)
	Source string // source prefix: app, staging, router, strata, app/web/0; "" = all
	Follow bool   // keep streaming live lines until ctx ends
}

// MaxLogEvent is the longest accepted server-sent event.
const MaxLogEvent = 1 << 20

// Logs calls fn with an app's recent log lines, oldest first, and with
// Follow keeps calling it with live lines until ctx is done (then it returns
// ctx.Err()), the server ends the stream, or fn returns an error (returned).
func (c *Client) Logs(ctx context.Context, app string, q LogOptions, fn func(api.LogEnvelope) error) error {
	v := url.Values{}
	if q.Recent > 0 {
		v.Set("recent", strconv.Itoa(q.Recent))
	}
	if q.Source != "" {
		v.Set("source", q.Source)
	}
	if q.Follow {
		v.Set("follow", "true")
	}
	path := appPath(app, "/logs")
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	if !q.Follow {
		var p page[api.LogEnvelope]
		if err := c.getJSON(ctx, path, &p); err != nil {
			return err
		}
		for _, e := range p.Items {
			if err := fn(e); err != nil {
				return err
			}
		}
		return nil
	}
	res, err := c.do(ctx, request{method: http.MethodGet, path: path, headers: map[string]string{"Accept": "text/event-stream"}})
	if err != nil {
		return err
	}
	defer res.Body.Close()
	return readEvents(ctx, bufio.NewScanner(res.Body), fn)
}

// readEvents parses a text/event-stream of log envelopes.
func readEvents(ctx context.Context, sc *bufio.Scanner, fn func(api.LogEnvelope) error) error {
	sc.Buffer(make([]byte, 64<<10), MaxLogEvent)
	var event string
	var data bytes.Buffer
	dispatch := func() error {
		defer func() { event = ""; data.Reset() }()
		if data.Len() == 0 {
			return nil
		}
		if event == "error" {
			var eb struct {
				Error *api.Error `json:"error"`
			}
			if json.Unmarshal(data.Bytes(), &eb) == nil && eb.Error != nil {
				return eb.Error
			}
			return api.Errorf(api.EInternal, "the log stream failed — see the stratad log")
		}
		var e api.LogEnvelope
		if err := json.Unmarshal(data.Bytes(), &e); err != nil {
			return api.Errorf(api.EInternal, "the API sent a malformed log event: %v", err)
		}
		return fn(e)
	}
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if err := dispatch(); err != nil {
				return err
			}
		case line[0] == ':':
			// comment (keepalive)
		default:
			field, value, _ := bytes.Cut(line, []byte(":"))
			value = bytes.TrimPrefix(value, []byte(" "))
			switch string(field) {
			case "event":
				event = string(value)
			case "data":
				if data.Len() > 0 {
					data.WriteByte('\n')
				}
				data.Write(value)
			}
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := sc.Err(); err != nil {
		return api.Errorf(api.EUnavailable, "the log stream broke: %v — run the command again", err)
	}
	return dispatch()
}
