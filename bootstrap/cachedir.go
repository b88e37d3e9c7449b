package bootstrap

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// A binary cache is a directory of executables named by the sha256 of
// their bytes: on a far side, where stage 1 puts what it receives; on the
// master, the images it sent (kept to compute deltas against, see
// delta.go). Both are the same kind of directory, by default
// ${XDG_CACHE_HOME:-$HOME/.cache}/mitogo of the account, and are pruned the
// same way (PruneCache):
//
//   - the KeepBuilds most recently used builds stay;
//   - an older one goes once it has not been used for PruneGrace and no
//     process of this account runs it;
//   - a build's compressed forms and the deltas to it, kept by the master
//     (<hash>.<what>, see forms.go and sent.go), go with the build, once
//     untouched for PruneGrace;
//   - names that are not hashes (the master's exe-hashes file) stay, except
//     temporary files (*.tmp, *.delta) untouched for StaleTemp.
//
// A build's last use is its file's modification time: stage 1 touches the
// file it found before it execs it, or a delta's base before it runs the
// patcher, and the master touches an image it sends again. So a stage 1
// that found a build never sees it removed before its exec: the build is
// then among the newest, and used within the grace period.

// KeepBuilds is how many builds a cache keeps whatever their age.
const KeepBuilds = 3

// PruneGrace is how long a build beyond KeepBuilds stays after its last
// use: a slow delta or upload in flight still finds its base.
const PruneGrace = 10 * time.Minute

// StaleTemp is how long a temporary file stays untouched before it is taken
// for the leftover of an upload that died.
const StaleTemp = time.Hour

// CacheEntry is one build in a cache.
type CacheEntry struct {
	Hash    string
	Size    int64
	LastUse time.Time
	Running bool // a process of this account runs it
}

// LocalCacheDir is this account's binary cache directory (where the
// master keeps the images it sent).
func LocalCacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding the cache directory: %w", err)
	}
	return filepath.Join(dir, "mitogo"), nil
}

// SelfCacheDir is the cache directory this process runs from when it is a
// build in a cache (a child stage 1 started), else LocalCacheDir.
func SelfCacheDir() (string, error) {
	if exe, err := os.Executable(); err == nil && isHash(filepath.Base(exe)) {
		return filepath.Dir(exe), nil
	}
	return LocalCacheDir()
}

// ListCache returns the builds in dir, the most recently used first. A
// missing directory holds none.
func ListCache(dir string) ([]CacheEntry, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the cache %s: %w", dir, err)
	}
	running := runningIn(dir)
	var out []CacheEntry
	for _, e := range ents {
		if !isHash(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, CacheEntry{Hash: e.Name(), Size: info.Size(), LastUse: info.ModTime(), Running: running[e.Name()]})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].LastUse.After(out[j].LastUse) })
	return out, nil
}

// PruneCache removes from dir the builds and temporary files that the
// rules above let go, as of now, and returns the builds it removed and the
// bytes they freed (with the temporary files').
func PruneCache(dir string, now time.Time) (removed []CacheEntry, freed int64, err error) {
	builds, err := ListCache(dir)
	if err != nil {
		return nil, 0, err
	}
	for i, b := range builds {
		if i < KeepBuilds || b.Running || now.Sub(b.LastUse) < PruneGrace {
			continue
		}
		path := filepath.Join(dir, b.Hash)
		// Used since it was listed (a stage 1 touched it): it stays.
		if st, err := os.Stat(path); err != nil || now.Sub(st.ModTime()) < PruneGrace {
			continue
		}
		if os.Remove(path) == nil {
			removed = append(removed, b)
			freed += b.Size
		}
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		n := e.Name()
		if !e.Type().IsRegular() {
			continue
		}
		stale := StaleTemp
		if !(strings.HasSuffix(n, ".tmp") || strings.HasSuffix(n, ".delta")) {
			build, _, derived := strings.Cut(n, ".")
			if !derived || !isHash(build) {
				continue
			}
			// A form or delta of a build (forms.go, sent.go) goes with it.
			if _, err := os.Lstat(filepath.Join(dir, build)); err == nil {
				continue
			}
			stale = PruneGrace
		}
		if info, err := e.Info(); err == nil && now.Sub(info.ModTime()) >= stale {
			if os.Remove(filepath.Join(dir, n)) == nil {
				freed += info.Size()
			}
		}
	}
	return removed, freed, nil
}

// runningIn returns the names of the files in dir that a process this one
// can see (its account's, on Linux) runs. Where /proc is not there, none.
func runningIn(dir string) map[string]bool {
	out := map[string]bool{}
	dir = filepath.Clean(dir)
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		real = dir
	}
	exes, _ := filepath.Glob("/proc/[0-9]*/exe")
	for _, p := range exes {
		target, err := os.Readlink(p)
		if err != nil {
			continue // another account's process, or gone
		}
		target = strings.TrimSuffix(target, " (deleted)")
		if d := filepath.Dir(target); d == dir || d == real {
			out[filepath.Base(target)] = true
		}
	}
	return out
}

// touch marks the file at path used now.
func touch(path string) error {
	now := time.Now()
	return os.Chtimes(path, now, now)
}
