package bootstrap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxDeltaShare is the largest delta sent, as a share of the image: past
// it the whole image (compressed in pipelined pieces) is as good.
const maxDeltaShare = 3

// maxBases is how many of the far side's builds that this account holds,
// the most recently used here first, are looked up as a delta's base.
const maxBases = 4

// sentState is what a Binary that comes from a file remembers of its
// uploads: whether its image is in this account's cache, and the deltas
// computed against each base.
type sentState struct {
	storeOnce sync.Once
	mu        sync.Mutex
	deltas    map[deltaKey]*deltaEntry
	forms     map[string][]byte // compressed forms found ready, by format
	formJobs  atomic.Int32      // background jobs started to make one
	deltaRuns atomic.Int32      // deltas computed (not found kept)
}

// form returns the smallest compressed form of this binary's image that
// the far side unpacks (decoders) and that is ready in this account's
// cache; "" and nil when there is none.
func (b *Binary) form(decoders map[string]bool) (string, []byte) {
	if b.Path == "" {
		return "", nil
	}
	f, ok := formFor(decoders)
	if !ok {
		return "", nil
	}
	b.sent.mu.Lock()
	data := b.sent.forms[f.name]
	b.sent.mu.Unlock()
	if data != nil {
		return f.name, data
	}
	dir, err := LocalCacheDir()
	if err != nil {
		return "", nil
	}
	if data = readyForm(dir, b.Hash, f); data == nil {
		return "", nil
	}
	b.sent.mu.Lock()
	if b.sent.forms == nil {
		b.sent.forms = map[string][]byte{}
	}
	b.sent.forms[f.name] = data
	b.sent.mu.Unlock()
	return f.name, data
}

// startForm starts making, in the background, the form of this binary's
// image that the far side (decoders, platform) would unpack, unless it is
// made or being made. The image must be in the cache (storeSent).
func (b *Binary) startForm(decoders map[string]bool, platform, nice string) {
	if b.Path == "" {
		return
	}
	f, ok := formFor(decoders)
	if !ok {
		return
	}
	dir, err := LocalCacheDir()
	if err != nil {
		return
	}
	if startForm(dir, b.Hash, f, platform, nice) {
		b.sent.formJobs.Add(1)
	}
}

// deltaEntry is the delta from one base, computed once: by the first
// connect that needs it, while the others wait. A connect whose ctx ends
// while it computes leaves the entry unknown for the next.
type deltaEntry struct {
	turn  chan struct{} // holds a token while a connect computes or reads it
	known bool
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
		img, f, err := openImage(b.Path)
		if err != nil {
			return
		}
		defer f.Close()
		if os.MkdirAll(dir, 0o700) != nil {
			return
		}
		if writeCacheFrom(dir, b.Hash, io.NewSectionReader(img, 0, img.Size())) == nil {
			PruneCache(dir, time.Now())
		}
	})
}

// writeCacheFile writes data to dir/name by way of a temporary name, so
// nothing ever sees half of it.
func writeCacheFile(dir, name string, data []byte) error {
	return writeCacheFrom(dir, name, bytes.NewReader(data))
}

// writeCacheFrom writes what r reads to dir/name by way of a temporary
// name, so nothing ever sees half of it.
func writeCacheFrom(dir, name string, r io.Reader) error {
	tmp := filepath.Join(dir, name+"."+strconv.Itoa(os.Getpid())+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o700)
	if err == nil {
		_, err = io.Copy(f, r)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
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
// the far side's builds (have) whose image this account's cache holds, the
// most recently used here first, and which can apply it; "" and nil when
// there is none, or the delta would not be much smaller than the image. On
// a near link (far false) only a delta kept on disk or one the zstd tool
// makes is worth its time; on a far link the in-process encoder is too.
// The error is ctx's, when it ended first.
func (b *Binary) deltaFor(ctx context.Context, have []string, far bool) (base string, delta []byte, err error) {
	if b.Path == "" {
		return "", nil, nil
	}
	dir, err := LocalCacheDir()
	if err != nil {
		return "", nil, nil
	}
	type held struct {
		hash string
		used time.Time
	}
	var bases []held
	for _, h := range have {
		if !isHash(h) || h == b.Hash {
			continue
		}
		if st, err := os.Stat(filepath.Join(dir, h)); err == nil {
			bases = append(bases, held{h, st.ModTime()})
		}
	}
	slices.SortStableFunc(bases, func(x, y held) int { return y.used.Compare(x.used) })
	for i, hb := range bases {
		if i >= maxBases {
			break
		}
		h := hb.hash
		e := b.entry(h, far)
		select {
		case e.turn <- struct{}{}:
		case <-ctx.Done():
			return "", nil, ctx.Err()
		}
		if !e.known {
			d := b.computeDelta(ctx, dir, h, far)
			if err := ctx.Err(); err != nil {
				<-e.turn
				return "", nil, err
			}
			e.delta, e.known = d, true
		}
		d := e.delta
		<-e.turn
		if d != nil {
			touch(filepath.Join(dir, h))
			return h, d, nil
		}
	}
	return "", nil, nil
}

// entry returns the delta entry for base on a near or far link, made on
// first use (a near link may find none where a far one makes one).
func (b *Binary) entry(base string, far bool) *deltaEntry {
	b.sent.mu.Lock()
	defer b.sent.mu.Unlock()
	if b.sent.deltas == nil {
		b.sent.deltas = map[deltaKey]*deltaEntry{}
	}
	k := deltaKey{base, far}
	e := b.sent.deltas[k]
	if e == nil {
		e = &deltaEntry{turn: make(chan struct{}, 1)}
		b.sent.deltas[k] = e
	}
	return e
}

// deltaKey names a delta entry: its base, and whether it was looked for
// on a far link.
type deltaKey struct {
	base string
	far  bool
}

// deltaName is the name under which the master keeps the delta from build
// base to build hash, without the sha256 of the delta that ends it.
func deltaName(hash, base string) string { return hash + ".from-" + base }

// noDelta ends the name of an empty file kept in place of a delta that
// does not pay, so that no process computes it again.
const noDelta = "none"

// keptDelta returns the delta from base to hash kept in dir, when it is
// there and matches the sha256 in its name, and whether this pair was
// computed before (a nil delta that is known does not pay).
func keptDelta(dir, hash, base string) ([]byte, bool) {
	prefix := deltaName(hash, base) + "."
	paths, _ := filepath.Glob(filepath.Join(dir, prefix+"*"))
	for _, p := range paths {
		sum := strings.TrimPrefix(filepath.Base(p), prefix)
		if sum == noDelta {
			return nil, true
		}
		if !isHash(sum) {
			continue
		}
		if d, err := checkForm(p, sum); err == nil {
			return d, true
		}
		os.Remove(p)
	}
	return nil, false
}

// computeDelta returns the delta of this binary's image against the build
// base in dir, or nil when the base is not here, cannot patch, or the
// delta does not pay or is not worth making on this link (see deltaFor).
// A delta computed is kept in dir (see keptDelta), so the next process
// that sends this build to a holder of base finds it. When ctx ends, the
// encoder stops (the zstd tool is killed) and the result is nil.
func (b *Binary) computeDelta(ctx context.Context, dir, base string, far bool) []byte {
	basePath := filepath.Join(dir, base)
	st, err := os.Lstat(basePath)
	if err != nil || !st.Mode().IsRegular() {
		return nil
	}
	can, err := patcherOf(basePath)
	if err != nil || !can.dict1 && !can.anyID {
		return nil
	}
	if d, known := keptDelta(dir, b.Hash, base); known {
		if id, err := frameDict(d); d != nil && (err != nil || id == 0 && !can.anyID) {
			return nil // made by the tool for a base that reads it; not this one
		}
		return d
	}
	if !sameProgram(basePath, b.Path) {
		return nil // another program's build: a delta would cost much and save little
	}
	img, f, err := openImage(b.Path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var d []byte
	zstdTool, toolErr := exec.LookPath("zstd")
	switch {
	case can.anyID && toolErr == nil:
		b.sent.deltaRuns.Add(1)
		if d, err = toolDelta(ctx, zstdTool, basePath, img, st.Size()); err != nil {
			return nil // an old tool, say: a whole upload then
		}
	case can.dict1 && far:
		baseImg, err := os.ReadFile(basePath)
		if err != nil {
			return nil
		}
		target := make([]byte, img.Size())
		if _, err := img.ReadAt(target, 0); err != nil {
			return nil
		}
		b.sent.deltaRuns.Add(1)
		if d, err = makeDelta(ctx, baseImg, target); err != nil {
			return nil
		}
	default:
		return nil
	}
	if int64(len(d)) > img.Size()/maxDeltaShare {
		writeCacheFile(dir, deltaName(b.Hash, base)+"."+noDelta, nil)
		return nil
	}
	sum := sha256.Sum256(d)
	writeCacheFile(dir, deltaName(b.Hash, base)+"."+hex.EncodeToString(sum[:]), d)
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
