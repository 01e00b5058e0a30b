package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/strata-paas/strata/api"
)

// pushLine is one NDJSON line of a push stream.
type pushLine struct {
	Type   string            `json:"type"` // log | status | result | error
	Line   string            `json:"line,omitempty"`
	Result *api.DeployResult `json:"result,omitempty"`
	Error  *api.Error        `json:"error,omitempty"`
}

// Push stream line types beyond api.DeployEventLog and api.DeployEventStatus.
const (
	pushResult = "result"
	pushError  = "error"
)

// limitedUpload wraps a MaxBytesReader and remembers whether the limit was
// hit, so the answer does not depend on how Deploy wraps the read error.
type limitedUpload struct {
	r        io.Reader
	max      int64
	hint     string // what to do when the limit is hit
	exceeded bool
}

func newLimitedUpload(c echo.Context, max int64, hint string) *limitedUpload {
	return &limitedUpload{r: http.MaxBytesReader(c.Response().Writer, c.Request().Body, max), max: max, hint: hint}
}

func (l *limitedUpload) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		l.exceeded = true
		return n, l.tooLarge()
	}
	return n, err
}

func (l *limitedUpload) tooLarge() error {
	return api.Errorf(api.EInvalid, "upload is larger than %s — %s", humanBytes(l.max), l.hint)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + " GiB"
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// pushStream writes NDJSON lines (of a push or a task), starting the 200
// response on first use.
type pushStream struct {
	c       echo.Context
	mu      sync.Mutex
	started bool
	broken  bool
}

// errClientGone is write's error once the client went away.
var errClientGone = api.Errorf(api.EUnavailable, "the client went away")

// write sends one line; it returns errClientGone once writing failed.
func (p *pushStream) write(l any) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.broken {
		return errClientGone
	}
	res := p.c.Response()
	if !p.started {
		p.started = true
		res.Header().Set(echo.HeaderContentType, "application/x-ndjson")
		res.Header().Set("Cache-Control", "no-cache")
		res.Header().Set("X-Content-Type-Options", "nosniff")
		res.WriteHeader(http.StatusOK)
	}
	b, err := json.Marshal(l)
	if err == nil {
		b = append(b, '\n')
		_, err = res.Write(b)
	}
	if err == nil {
		err = http.NewResponseController(res.Writer).Flush()
	}
	if err != nil {
		p.broken = true // the client went away; Deploy carries on (the push was accepted)
		return errClientGone
	}
	return nil
}

// began reports whether the 200 response has started.
func (p *pushStream) began() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.started
}

// close stops writes: a Progress call after Deploy returned must not touch
// a finished response.
func (p *pushStream) close() {
	p.mu.Lock()
	p.broken = true
	p.mu.Unlock()
}

func (s *Server) push(c echo.Context) error {
	name, err := appName(c)
	if err != nil {
		return err
	}
	create, err := boolParam(c, "create")
	if err != nil {
		return err
	}
	wait, err := boolParam(c, "wait")
	if err != nil {
		return err
	}
	ignoreManifest, err := boolParam(c, "ignore_manifest")
	if err != nil {
		return err
	}
	noCache, err := boolParam(c, "no_cache")
	if err != nil {
		return err
	}
	buildpacks := c.QueryParams()["buildpack"]
	imageFile, err := boolParam(c, "docker_image_file")
	if err != nil {
		return err
	}
	req := c.Request()
	up := newLimitedUpload(c, s.cfg.MaxUploadBytes, "add files to .stratignore")
	if req.ContentLength > s.cfg.MaxUploadBytes {
		return up.tooLarge()
	}
	stream := &pushStream{c: c}
	defer stream.close()
	res, err := s.svc.Deploy.Deploy(ctxOf(c), api.DeployRequest{
		App:            name,
		Source:         up,
		CreateApp:      create,
		Wait:           wait,
		IgnoreManifest: ignoreManifest,
		Buildpacks:     buildpacks,
		NoCache:        noCache,
		Image:          c.QueryParam("docker_image"),
		ImageFile:      imageFile,
		Progress: func(ev api.DeployEvent) {
			_ = stream.write(pushLine{Type: ev.Type, Line: ev.Line})
		},
	})
	if up.exceeded {
		err = up.tooLarge()
	}
	if err != nil {
		if !stream.began() {
			return err
		}
		_ = stream.write(pushLine{Type: pushError, Error: s.toAPIError(c, err)})
		return nil
	}
	if res == nil {
		res = &api.DeployResult{}
	}
	_ = stream.write(pushLine{Type: pushResult, Result: res})
	return nil
}

// boolParam parses an optional boolean query parameter.
func boolParam(c echo.Context, name string) (bool, error) {
	v := c.QueryParam(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, api.Errorf(api.EInvalid, "query parameter %s=%q must be true or false", name, v)
	}
	return b, nil
}
