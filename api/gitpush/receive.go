package gitpush

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/strata-paas/strata/api"
)

// push is the state of one receive-pack request.
type push struct {
	h       *Handler
	app     string
	dir     string
	st      *filesystem.Storage
	created bool
	req     *packp.ReferenceUpdateRequest
	status  map[plumbing.ReferenceName]string // "" = ok, else the ng reason
	locked  bool                              // p.dir is marked busy
}

// release closes the repository and unlocks the app.
func (p *push) release() {
	if p.st != nil {
		_ = p.st.Close()
		p.st = nil
	}
	if p.locked {
		p.h.unlock(p.dir)
		p.locked = false
	}
}

func (h *Handler) receivePack(w http.ResponseWriter, r *http.Request, repo repoRef) {
	ctx := r.Context()
	app := repo.app
	log := h.log.With("app", app, "actor", api.ActorName(ctx))

	if ct := r.Header.Get("Content-Type"); ct != "application/x-"+serviceReceivePack+"-request" {
		textError(w, http.StatusUnsupportedMediaType, "expected a git-receive-pack request — push with git\n")
		return
	}
	body, err := h.requestBody(r)
	if err != nil {
		textError(w, http.StatusBadRequest, api.ErrorMessage(err)+"\n")
		return
	}
	defer body.Close()
	br := bufio.NewReaderSize(body, 64<<10)

	// git probes large pushes with a lone flush-pkt (to get authentication
	// done before streaming); receive-pack answers it with nothing.
	if pfx, _ := br.Peek(5); string(pfx) == "0000" {
		w.Header().Set("Content-Type", "application/x-"+serviceReceivePack+"-result")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		return
	}

	req := packp.NewReferenceUpdateRequest()
	if err := req.Decode(br); err != nil {
		textError(w, http.StatusBadRequest, "malformed push request — push with a standard git client\n")
		return
	}
	p := &push{h: h, app: app, dir: h.repoPath(repo), req: req, status: map[plumbing.ReferenceName]string{}}
	defer p.release()
	unpackStatus := p.receive(ctx, br)

	band, useBand := sideband.Sideband64k, req.Capabilities.Supports(capability.Sideband64k)
	if !useBand && req.Capabilities.Supports(capability.Sideband) {
		band, useBand = sideband.Sideband, true
	}
	w.Header().Set("Content-Type", "application/x-"+serviceReceivePack+"-result")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rw := newResponseWriter(w, band, useBand)

	if unpackStatus == "ok" {
		p.apply(ctx, rw, log)
	}
	p.release()

	var rs *packp.ReportStatus
	if req.Capabilities.Supports(capability.ReportStatus) {
		rs = packp.NewReportStatus()
		rs.UnpackStatus = unpackStatus
		for _, c := range req.Commands {
			st := p.status[c.Name]
			if st == "" {
				st = "ok"
			}
			rs.CommandStatuses = append(rs.CommandStatuses, &packp.CommandStatus{ReferenceName: c.Name, Status: st})
		}
	}
	if err := rw.Finish(rs); err != nil {
		log.Info("gitpush.client_gone", "err", err)
	}
}

// requestBody returns the request body, decompressed and capped at
// MaxPackBytes.
func (h *Handler) requestBody(r *http.Request) (io.ReadCloser, error) {
	raw := io.Reader(&limitReader{r: r.Body, n: h.cfg.MaxPackBytes})
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		return io.NopCloser(raw), nil
	case "gzip", "x-gzip":
		gz, err := gzip.NewReader(raw)
		if err != nil {
			return nil, api.Errorf(api.EInvalid, "the push body is not valid gzip — push with a standard git client")
		}
		return struct {
			io.Reader
			io.Closer
		}{&limitReader{r: gz, n: h.cfg.MaxPackBytes}, gz}, nil
	default:
		return nil, api.Errorf(api.EInvalid, "unsupported Content-Encoding %q — push with a standard git client", truncate(enc, 20))
	}
}

// receive checks the commands, stores the packfile and returns the unpack
// status ("ok" or the reason). Refused commands get their ng reason in
// p.status.
func (p *push) receive(ctx context.Context, body *bufio.Reader) string {
	defer func() { _, _ = io.Copy(io.Discard, body) }()

	refuseAll := func(reason string) {
		for _, c := range p.req.Commands {
			if p.status[c.Name] == "" {
				p.status[c.Name] = reason
			}
		}
	}
	if p.req.Capabilities.Supports(capability.PushOptions) || len(p.req.Options) > 0 {
		refuseAll("push options are not supported")
	}
	if p.req.Shallow != nil {
		refuseAll("shallow pushes are not supported — push the full history")
	}
	updates := 0
	for _, c := range p.req.Commands {
		if why := checkBranchRef(c.Name.String()); why != "" {
			p.status[c.Name] = why
			continue
		}
		if c.Action() != packp.Delete {
			updates++
		}
	}
	if updates > 1 {
		refuseAll("push one branch at a time — each pushed branch is deployed")
	}

	accepted := 0
	for _, c := range p.req.Commands {
		if p.status[c.Name] == "" {
			accepted++
		}
	}
	if accepted == 0 {
		return "ok" // nothing to do; the repository is not touched
	}
	if !p.h.lock(p.dir) {
		refuseAll("another push of this app is in progress — wait for it to finish and push again")
		return "ok"
	}
	p.locked = true // until p.release
	st, created, err := openRepo(p.dir, true)
	if err != nil {
		p.h.log.Error("gitpush.open_repo_failed", "app", p.app, "err", err)
		return "cannot open the app's repository"
	}
	p.st, p.created = st, created

	if updates == 0 {
		return "ok" // deletions only: git sends no packfile
	}
	// go-git preallocates index memory from the header's object count:
	// check it before handing the stream over.
	hdr, _ := body.Peek(12)
	if why := checkPackHeader(hdr, p.h.cfg.MaxPackObjects); why != "" {
		refuseAll("unpacker error")
		return why
	}
	if err := packfile.UpdateObjectStorage(st, contextReader{ctx: ctx, r: body}); err != nil {
		removeTempPacks(p.dir)
		reason := "unpacking the pushed objects failed"
		if errors.Is(err, errTooLarge) {
			reason = "push is larger than " + sizeString(p.h.cfg.MaxPackBytes) + " — remove large files from the repository"
		}
		p.h.log.Info("gitpush.unpack_failed", "app", p.app, "err", err)
		refuseAll("unpacker error")
		return reason
	}
	return "ok"
}

// apply runs the accepted commands: deletions, then the deploy of the one
// updated branch, whose ref is updated only when the deploy succeeds.
func (p *push) apply(ctx context.Context, rw *responseWriter, log *slog.Logger) {
	var update *packp.Command
	for _, c := range p.req.Commands {
		if p.status[c.Name] != "" {
			continue
		}
		cur, err := p.st.Reference(c.Name)
		switch {
		case errors.Is(err, plumbing.ErrReferenceNotFound):
			cur = nil
		case err != nil:
			p.status[c.Name] = "cannot read the branch"
			continue
		}
		if (cur == nil && c.Old != plumbing.ZeroHash) || (cur != nil && cur.Hash() != c.Old) {
			p.status[c.Name] = "the branch changed while you pushed — push again"
			continue
		}
		if c.Action() == packp.Delete {
			if cur != nil {
				if err := p.st.RemoveReference(c.Name); err != nil {
					p.status[c.Name] = "cannot delete the branch"
					continue
				}
			}
			rw.Line("-----> Deleted branch " + c.Name.Short() + " (the app keeps running)")
			continue
		}
		update = c
	}
	if update == nil {
		return
	}
	res, err := p.deploy(ctx, rw, update)
	if err != nil {
		msg := api.ErrorMessage(err)
		if api.ErrorCode(err) == api.ENotFound {
			msg = fmt.Sprintf("app %s does not exist — run `strata apps create %s` and push again", p.app, p.app)
			if p.created { // do not keep repositories of apps that do not exist
				_ = p.st.Close()
				p.st = nil
				_ = os.RemoveAll(p.dir)
			}
		}
		rw.Line("!      " + msg)
		p.status[update.Name] = shortReason(msg)
		log.Info("gitpush.deploy_failed", "ref", update.Name.String(), "err", err)
		return
	}
	var old *plumbing.Reference
	if update.Old != plumbing.ZeroHash {
		old = plumbing.NewHashReference(update.Name, update.Old)
	}
	if err := p.st.CheckAndSetReference(plumbing.NewHashReference(update.Name, update.New), old); err != nil {
		log.Error("gitpush.update_ref_failed", "ref", update.Name.String(), "err", err)
		p.status[update.Name] = "deployed, but updating the branch failed — push again"
	}
	if res != nil && res.Release != nil {
		rw.Line(fmt.Sprintf("-----> Released v%d", res.Release.Version))
	}
	if res != nil {
		for _, u := range res.URLs {
			rw.Line("       " + u + " deployed")
		}
	}
	log.Info("gitpush.deployed", "ref", update.Name.String(), "commit", update.New.String())
}

// deploy checks the pushed tree and streams it to the deployer.
func (p *push) deploy(ctx context.Context, rw *responseWriter, c *packp.Command) (*api.DeployResult, error) {
	tree, err := readSourceTree(p.st, c.New, treeLimits{maxBytes: p.h.cfg.MaxSourceBytes, maxFiles: p.h.cfg.MaxSourceFiles})
	if err != nil {
		return nil, err
	}
	for _, s := range tree.submodules {
		rw.Line("-----> Skipping submodule " + s + " (submodules are not deployed)")
	}
	rw.Line(fmt.Sprintf("-----> Deploying %s (%s) to %s", c.Name.Short(), c.New.String()[:7], p.app))

	pr, pw := io.Pipe()
	archived := make(chan error, 1)
	go func() {
		err := writeArchive(pw, p.st, tree)
		pw.CloseWithError(err)
		archived <- err
	}()
	stop := make(chan struct{})
	go keepAlive(rw, p.h.cfg.Keepalive, stop)

	res, err := p.h.deployer.Deploy(ctx, api.DeployRequest{
		App:       p.app,
		Source:    pr,
		CreateApp: false,
		Wait:      true,
		Progress:  func(e api.DeployEvent) { rw.Line(e.Line) },
	})
	close(stop)
	pr.CloseWithError(errors.New("deploy finished"))
	if aerr := <-archived; aerr != nil && err != nil && api.ErrorCode(aerr) == api.EInvalid {
		err = aerr // the root cause
	}
	return res, err
}

// checkPackHeader returns why a packfile header is refused, or "".
func checkPackHeader(hdr []byte, maxObjects int) string {
	if len(hdr) < 12 || string(hdr[:4]) != "PACK" {
		return "the push has no valid packfile"
	}
	if v := binary.BigEndian.Uint32(hdr[4:8]); v != 2 && v != 3 {
		return fmt.Sprintf("unsupported packfile version %d", v)
	}
	if n := binary.BigEndian.Uint32(hdr[8:12]); uint64(n) > uint64(maxObjects) {
		return fmt.Sprintf("push has %d objects, more than the limit of %d", n, maxObjects)
	}
	return ""
}

// sizeString formats a byte count for messages.
func sizeString(n int64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

// shortReason makes msg fit a report-status ng line.
func shortReason(msg string) string {
	msg = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, msg)
	if msg == "" {
		msg = "deploy failed"
	}
	return truncate(msg, 200)
}
