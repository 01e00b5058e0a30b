package stager

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/strata-paas/strata/api"
)

// sharedCache is the directory of CacheDir shared by the builds of every app
// (unconfined builders only; see Stage).
const sharedCache = "_shared"

// seedCache is the directory of CacheDir holding the Go build cache that
// only the builder writes (builder.Workspace.GoSeedCache). App ids never
// begin with '_'.
const seedCache = "_seed"

func cacheHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:6])
}

// cacheFor returns the build cache dir of the app key and a func to call
// when the build is over. A no-cache build gets an empty dir in its sandbox
// and leaves the app's cache untouched. The app's cache is marked as used
// now (its modification time orders eviction) and is not evicted while a
// build uses it; release evicts the least recently used caches beyond
// CacheMaxBytes.
func (s *Stager) cacheFor(key string, noCache bool, sandbox string) (dir string, release func(), err error) {
	if noCache {
		dir = filepath.Join(sandbox, "cache")
		return dir, func() {}, os.MkdirAll(dir, 0o755)
	}
	dir = filepath.Join(s.cfg.CacheDir, key)
	s.mu.Lock()
	s.inUse[key]++
	s.mu.Unlock()
	done := func() {
		s.mu.Lock()
		s.inUse[key]--
		if s.inUse[key] == 0 {
			delete(s.inUse, key)
		}
		s.mu.Unlock()
		s.evict()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		done()
		return "", nil, fmt.Errorf("stager: %w", err)
	}
	now := time.Now()
	_ = os.Chtimes(dir, now, now)
	return dir, done, nil
}

// evict removes whole app caches, least recently used first, until all
// caches together fit in CacheMaxBytes. Caches in use are kept.
func (s *Stager) evict() {
	ents, err := os.ReadDir(s.cfg.CacheDir)
	if err != nil {
		return
	}
	type entry struct {
		name string
		size int64
		used time.Time
	}
	var all []entry
	var total int64
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		size := dirSize(filepath.Join(s.cfg.CacheDir, e.Name()))
		total += size
		all = append(all, entry{e.Name(), size, info.ModTime()})
	}
	if total <= s.cfg.CacheMaxBytes {
		return
	}
	slices.SortFunc(all, func(a, b entry) int { return a.used.Compare(b.used) })
	for _, e := range all {
		if total <= s.cfg.CacheMaxBytes {
			return
		}
		s.mu.Lock()
		busy := s.inUse[e.name] > 0
		if !busy {
			s.inUse[e.name]++ // no build starts on it while it goes
		}
		s.mu.Unlock()
		if busy {
			continue
		}
		err := os.RemoveAll(filepath.Join(s.cfg.CacheDir, e.name))
		s.mu.Lock()
		delete(s.inUse, e.name)
		s.mu.Unlock()
		if err != nil {
			s.log.Warn("stage.cache_evict_failed", "cache", e.name, "err", err)
			continue
		}
		total -= e.size
		s.log.Info("stage.cache_evicted", "cache", e.name, "bytes", e.size, "last_used", e.used)
	}
}

// PurgeCache removes the build cache of the app id (as in BuildJob.AppID),
// for "strata apps purge-cache". It fails with EConflict while a build of
// the app uses it.
func (s *Stager) PurgeCache(appID string) error {
	if appID == "" || strings.HasPrefix(appID, "_") || !filepath.IsLocal(appID) || filepath.Base(appID) != appID {
		return api.Errorf(api.EInvalid, "no usable app id (%q)", appID)
	}
	s.mu.Lock()
	busy := s.inUse[appID] > 0
	if !busy {
		s.inUse[appID]++
	}
	s.mu.Unlock()
	if busy {
		return api.Errorf(api.EConflict, "a build of the app is using its cache — purge it when the build is over")
	}
	defer func() {
		s.mu.Lock()
		delete(s.inUse, appID)
		s.mu.Unlock()
	}()
	if err := os.RemoveAll(filepath.Join(s.cfg.CacheDir, appID)); err != nil {
		return fmt.Errorf("stager: purge cache: %w", err)
	}
	return nil
}

// dirSize is the bytes of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
