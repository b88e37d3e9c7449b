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
//     (<hash>.<what>, see forms.go and sent.go), go with the build; one
//     whose build is not there (a delta written just before its build is
//     stored) goes once untouched for PruneGrace;
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
	Hash    string     // the hex sha256 of the build: its file's name
	Size    int64      // bytes
	LastUse time.Time  // its file's modification time, touched on each use
	Running bool       // a process of this account runs it
	Kept    []KeptFile // its compressed forms and the deltas to it (a master's cache)
}

// KeptFile is a file a master keeps beside a build: a compressed form of
// it, <build>.<format>.<sha256> (forms.go), or a delta to it from an
// earlier build, <build>.from-<base>.<sha256>, or <build>.from-<base>.none
// when a delta does not pay (an empty file; sent.go).
type KeptFile struct {
	Name    string    // the file's name in the cache
	Build   string    // the build it belongs to
	Format  string    // a form's format: xz, zstd or gz; "" for a delta
	Base    string    // a delta's base build; "" for a form
	Size    int64     // bytes
	ModTime time.Time // its file's modification time
}

// Cache is what a cache directory holds.
type Cache struct {
	Builds []CacheEntry // the most recently used first, each with its kept files
	Strays []KeptFile   // kept files whose build is gone (PruneCache removes them)
}

// keptFile parses name as a file kept beside a build; false when it is
// not one (a build, a temporary file, another name).
func keptFile(name string) (KeptFile, bool) {
	build, rest, ok := strings.Cut(name, ".")
	if !ok || !isHash(build) {
		return KeptFile{}, false
	}
	k := KeptFile{Name: name, Build: build}
	what, sum, ok := strings.Cut(rest, ".")
	if !ok {
		return KeptFile{}, false
	}
	if base, isDelta := strings.CutPrefix(what, "from-"); isDelta {
		k.Base = base
		return k, isHash(base) && (isHash(sum) || sum == noDelta)
	}
	for _, f := range formFormats {
		if f.name == what {
			k.Format = what
			return k, isHash(sum)
		}
	}
	return KeptFile{}, false
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

// ListCache returns the builds in dir, the most recently used first, each
// with the files kept beside it. A missing directory holds none.
func ListCache(dir string) ([]CacheEntry, error) {
	c, err := ReadCache(dir)
	return c.Builds, err
}

// ReadCache returns what dir holds: its builds, the most recently used
// first, each with the files kept beside it, and the kept files whose build
// is gone. A missing directory holds nothing.
func ReadCache(dir string) (Cache, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return Cache{}, nil
	}
	if err != nil {
		return Cache{}, fmt.Errorf("reading the cache %s: %w", dir, err)
	}
	running := runningIn(dir)
	var c Cache
	kept := map[string][]KeptFile{}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		k, isKept := keptFile(e.Name())
		if !isKept && !isHash(e.Name()) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		if isKept {
			k.Size, k.ModTime = info.Size(), info.ModTime()
			kept[k.Build] = append(kept[k.Build], k)
			continue
		}
		c.Builds = append(c.Builds, CacheEntry{Hash: e.Name(), Size: info.Size(), LastUse: info.ModTime(), Running: running[e.Name()]})
	}
	sort.SliceStable(c.Builds, func(i, j int) bool { return c.Builds[i].LastUse.After(c.Builds[j].LastUse) })
	for i, b := range c.Builds {
		c.Builds[i].Kept = kept[b.Hash]
		delete(kept, b.Hash)
	}
	for _, ks := range kept {
		c.Strays = append(c.Strays, ks...)
	}
	sort.Slice(c.Strays, func(i, j int) bool { return c.Strays[i].Name < c.Strays[j].Name })
	return c, nil
}

// PruneCache removes from dir the builds and temporary files that the
// rules above let go, as of now, and returns the builds it removed, each
// with the kept files that went with it, and the bytes they freed (with the
// temporary files' and the strays').
func PruneCache(dir string, now time.Time) (removed []CacheEntry, freed int64, err error) {
	c, err := ReadCache(dir)
	if err != nil {
		return nil, 0, err
	}
	for i, b := range c.Builds {
		if i < KeepBuilds || b.Running || now.Sub(b.LastUse) < PruneGrace {
			continue
		}
		path := filepath.Join(dir, b.Hash)
		// Used since it was listed (a stage 1 touched it): it stays.
		if st, err := os.Stat(path); err != nil || now.Sub(st.ModTime()) < PruneGrace {
			continue
		}
		if os.Remove(path) != nil {
			continue
		}
		freed += b.Size
		// What was kept beside it goes with it, however recent: a form
		// finished after the build's last use is no use without it.
		gone := b.Kept[:0:0]
		for _, k := range b.Kept {
			if os.Remove(filepath.Join(dir, k.Name)) == nil {
				gone = append(gone, k)
				freed += k.Size
			}
		}
		b.Kept = gone
		removed = append(removed, b)
	}
	// A stray is kept a while: a delta may be written before the build it
	// leads to is stored.
	for _, k := range c.Strays {
		if now.Sub(k.ModTime) >= PruneGrace && os.Remove(filepath.Join(dir, k.Name)) == nil {
			freed += k.Size
		}
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		n := e.Name()
		if !e.Type().IsRegular() || !(strings.HasSuffix(n, ".tmp") || strings.HasSuffix(n, ".delta")) {
			continue
		}
		if info, err := e.Info(); err == nil && now.Sub(info.ModTime()) >= StaleTemp {
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
