package bootstrap

import (
	"debug/buildinfo"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// maxDeltaShare is the largest delta sent, as a share of the image: past
// it the whole image (compressed in pipelined pieces) is as good.
const maxDeltaShare = 3

// maxBases is how many of the far side's builds, newest first, are looked
// up as a delta's base.
const maxBases = 4

// sentState is what a Binary that comes from a file remembers of its
// uploads: whether its image is in this account's cache, and the deltas
// computed against each base.
type sentState struct {
	storeOnce sync.Once
	mu        sync.Mutex
	deltas    map[string]*deltaEntry // by base hash
}

// deltaEntry is the delta from one base, computed once.
type deltaEntry struct {
	once  sync.Once
	delta []byte // nil when none pays
}

// storeSent puts the image sent in this account's cache, named by its
// hash, so that the next build can be sent as a delta against it; an image
// already there is marked used. Once per Binary; failing only costs a delta
// later. The cache is then pruned.
func (b *Binary) storeSent() {
	if b.Path == "" {
		return
	}
	b.sent.storeOnce.Do(func() {
		dir, err := LocalCacheDir()
		if err != nil {
			return
		}
		path := filepath.Join(dir, b.Hash)
		if touch(path) == nil {
			return
		}
		img, err := readImage(b.Path)
		if err != nil || os.MkdirAll(dir, 0o700) != nil {
			return
		}
		if writeCacheFile(dir, b.Hash, img) == nil {
			PruneCache(dir, time.Now())
		}
	})
}

// writeCacheFile writes data to dir/name by way of a temporary name, so
// nothing ever sees half of it.
func writeCacheFile(dir, name string, data []byte) error {
	tmp := filepath.Join(dir, name+"."+strconv.Itoa(os.Getpid())+".tmp")
	err := os.WriteFile(tmp, data, 0o700)
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s to the cache: %w", name, err)
	}
	return nil
}

// deltaFor returns a delta of this binary's image against the first of
// the far side's builds (have, newest first) whose image this account's
// cache holds and which can apply it; "" and nil when there is none, or
// the delta would not be much smaller than the image.
func (b *Binary) deltaFor(have []string) (base string, delta []byte) {
	if b.Path == "" {
		return "", nil
	}
	dir, err := LocalCacheDir()
	if err != nil {
		return "", nil
	}
	for i, h := range have {
		if i >= maxBases {
			break
		}
		if !isHash(h) || h == b.Hash {
			continue
		}
		b.sent.mu.Lock()
		if b.sent.deltas == nil {
			b.sent.deltas = map[string]*deltaEntry{}
		}
		e := b.sent.deltas[h]
		if e == nil {
			e = &deltaEntry{}
			b.sent.deltas[h] = e
		}
		b.sent.mu.Unlock()
		e.once.Do(func() { e.delta = b.computeDelta(filepath.Join(dir, h)) })
		if e.delta != nil {
			touch(filepath.Join(dir, h))
			return h, e.delta
		}
	}
	return "", nil
}

// computeDelta returns the delta of this binary's image against the image
// at basePath, or nil when the base is not here, cannot patch, or the
// delta does not pay.
func (b *Binary) computeDelta(basePath string) []byte {
	st, err := os.Lstat(basePath)
	if err != nil || !st.Mode().IsRegular() {
		return nil
	}
	if !sameProgram(basePath, b.Path) {
		return nil // another program's build: a delta would cost much and save little
	}
	base, err := os.ReadFile(basePath)
	if err != nil || !canPatch(base) {
		return nil
	}
	img, err := readImage(b.Path)
	if err != nil {
		return nil
	}
	d, err := makeDelta(base, img)
	if err != nil || len(d) > len(img)/maxDeltaShare {
		return nil
	}
	return d
}

// sameProgram reports whether the executables at a and b are builds of
// the same main package (by their Go build information), the only bases
// worth a delta: between different programs it costs a full compression
// against a large dictionary and saves little. Two files without Go build
// information (not Go programs) are not told apart.
func sameProgram(a, b string) bool {
	ia, errA := buildinfo.ReadFile(a)
	ib, errB := buildinfo.ReadFile(b)
	switch {
	case errA != nil && errB != nil:
		return true
	case errA != nil || errB != nil:
		return false
	}
	return ia.Path == ib.Path
}
