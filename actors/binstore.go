package actors

import (
	"sync"

	"github.com/mitogo/mitogo/bootstrap"
)

// binStore holds the binaries this context hands to stage 1: its own
// executable (hashed once, selfBinary), the binaries for other platforms
// that connections made here were given (binarySources, by token), and
// those hashed or fetched here (otherBinaries, by path or "sha256:"+hash).
//
// Invariant: bin and binErr are written once, inside binOnce, and read
// only after it. Whenever binMu is not held, each token in binarySources
// names the source of a connection whose handle is alive (addBinarySource
// adds, the handle's death removes), and otherBinaries holds at most one
// Binary per key, never replaced once stored. Only connects read it; no
// call's frames do.
type binStore struct {
	binOnce sync.Once
	bin     *bootstrap.Binary // this program, for stage 1
	binErr  error

	binMu         sync.Mutex
	binarySources map[string]binarySource      // by token: what connections made here were given
	otherBinaries map[string]*bootstrap.Binary // by path or hash: binaries for other platforms, hashed once
}

func (b *binStore) addSource(token string, src binarySource) {
	b.binMu.Lock()
	if b.binarySources == nil {
		b.binarySources = map[string]binarySource{}
	}
	b.binarySources[token] = src
	b.binMu.Unlock()
}

func (b *binStore) dropSource(token string) {
	b.binMu.Lock()
	delete(b.binarySources, token)
	b.binMu.Unlock()
}

func (b *binStore) source(token string) (binarySource, bool) {
	b.binMu.Lock()
	defer b.binMu.Unlock()
	src, ok := b.binarySources[token]
	return src, ok
}

// other returns the binary kept under key.
func (b *binStore) other(key string) (*bootstrap.Binary, bool) {
	b.binMu.Lock()
	defer b.binMu.Unlock()
	bin, ok := b.otherBinaries[key]
	return bin, ok
}

// keep stores bin under key unless one is there already, and returns the
// one stored.
func (b *binStore) keep(key string, bin *bootstrap.Binary) *bootstrap.Binary {
	b.binMu.Lock()
	defer b.binMu.Unlock()
	if b.otherBinaries == nil {
		b.otherBinaries = map[string]*bootstrap.Binary{}
	}
	if prev, ok := b.otherBinaries[key]; ok {
		return prev
	}
	b.otherBinaries[key] = bin
	return bin
}
