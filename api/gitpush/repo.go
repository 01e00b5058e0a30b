package gitpush

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// Capabilities advertised by receive-pack. no-thin: the pack must be
// self-contained, because go-git's pack indexer cannot resolve deltas against
// objects outside the pack. No push-options, no atomic.
var advertisedCaps = []capability.Capability{
	capability.ReportStatus,
	capability.Sideband64k,
	capability.Sideband,
	capability.OFSDelta,
	capability.DeleteRefs,
	"no-thin",
}

const agent = "strata"

// openRepo opens the bare repository at dir. With create it initialises a
// missing repository and reports created; without, a missing repository
// returns fs.ErrNotExist.
func openRepo(dir string, create bool) (st *filesystem.Storage, created bool, err error) {
	if _, err := os.Stat(filepath.Join(dir, "HEAD")); err != nil {
		if !errors.Is(err, fs.ErrNotExist) || !create {
			return nil, false, err
		}
		if _, err := git.PlainInit(dir, true); err != nil {
			return nil, false, fmt.Errorf("init repository: %w", err)
		}
		created = true
	}
	st = filesystem.NewStorage(osfs.New(dir), cache.NewObjectLRUDefault())
	if created {
		head := plumbing.NewSymbolicReference(plumbing.HEAD, plumbing.NewBranchReferenceName("main"))
		if err := st.SetReference(head); err != nil {
			_ = st.Close()
			return nil, true, fmt.Errorf("set HEAD: %w", err)
		}
	}
	return st, created, nil
}

// branches returns the refs under refs/heads/ of st.
func branches(st *filesystem.Storage) (map[plumbing.ReferenceName]plumbing.Hash, error) {
	iter, err := st.IterReferences()
	if err != nil {
		return nil, err
	}
	defer iter.Close()
	refs := map[plumbing.ReferenceName]plumbing.Hash{}
	err = iter.ForEach(func(r *plumbing.Reference) error {
		if r.Type() == plumbing.HashReference && r.Name().IsBranch() {
			refs[r.Name()] = r.Hash()
		}
		return nil
	})
	return refs, err
}

// advertise answers info/refs?service=git-receive-pack. A missing repository
// advertises no refs and is not created.
func (h *Handler) advertise(w http.ResponseWriter, repo repoRef) {
	app := repo.app
	ar := packp.NewAdvRefs()
	for _, c := range advertisedCaps {
		_ = ar.Capabilities.Set(c)
	}
	_ = ar.Capabilities.Set(capability.Agent, agent)

	st, _, err := openRepo(h.repoPath(repo), false)
	switch {
	case err == nil:
		refs, err := branches(st)
		_ = st.Close()
		if err != nil {
			h.log.Error("gitpush.list_refs_failed", "app", app, "err", err)
			textError(w, http.StatusInternalServerError, "cannot read the app's repository — try again later\n")
			return
		}
		for name, hash := range refs {
			ar.References[name.String()] = hash
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		h.log.Error("gitpush.open_repo_failed", "app", app, "err", err)
		textError(w, http.StatusInternalServerError, "cannot open the app's repository — try again later\n")
		return
	}

	var buf bytes.Buffer
	e := pktline.NewEncoder(&buf)
	_ = e.EncodeString("# service=" + serviceReceivePack + "\n")
	_ = e.Flush()
	if err := ar.Encode(&buf); err != nil {
		h.log.Error("gitpush.advertise_failed", "app", app, "err", err)
		textError(w, http.StatusInternalServerError, "cannot list the app's branches\n")
		return
	}
	w.Header().Set("Content-Type", "application/x-"+serviceReceivePack+"-advertisement")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(buf.Bytes())
}

// removeTempPacks deletes leftovers of a failed pack write (go-git keeps its
// temporary file when indexing fails).
func removeTempPacks(dir string) {
	matches, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "tmp_pack_*"))
	for _, m := range matches {
		if strings.HasPrefix(filepath.Base(m), "tmp_pack_") {
			_ = os.Remove(m)
		}
	}
}
