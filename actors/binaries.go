package actors

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"runtime"

	"github.com/mitogo/mitogo/bootstrap"
)

// Binaries for far sides of other platforms are served by the context that
// made the connection (usually the master), wherever in the tree stage 1
// runs: a context started Via another asks the connecting context for the
// binary when the far side's platform is not its own. The connecting
// context answers with what Binaries or BinaryFunc gave for that
// connection, or its own executable when the platform is its own; so a
// chain master (amd64) → arm64 host → amd64 host works with one Binaries
// entry. Connections are named by a random token, so a child can only
// fetch the binaries given for a connection it was asked to make, never an
// arbitrary file of the master's.

const fnBinary = "mitogo.binary"

// binarySource is what one connection was given to find binaries with.
type binarySource struct {
	paths map[string]string
	fn    func(platform string) (string, error)
}

type binaryRequest struct {
	Token    string `msgpack:"token"`
	Platform string `msgpack:"platform"`
}

type binaryReply struct {
	Found bool   `msgpack:"found"`
	Hash  string `msgpack:"hash"`
	Gzip  []byte `msgpack:"gzip"`
}

var binaryFunc = Register(fnBinary, func(ctx context.Context, req binaryRequest) (binaryReply, error) {
	b, err := RouterFrom(ctx).localBinary(req.Token, req.Platform)
	if err != nil || b == nil {
		return binaryReply{}, err
	}
	gz, err := b.Gzipped()
	if err != nil {
		return binaryReply{}, fmt.Errorf("reading the binary for %s: %w", req.Platform, err)
	}
	return binaryReply{Found: true, Hash: b.Hash, Gzip: gz}, nil
})

// addBinarySource records what a connection was given and returns its
// token ("" when nothing was given); the entry goes when c ends.
func (r *Router) addBinarySource(src binarySource, c *Context) string {
	if src.paths == nil && src.fn == nil {
		return ""
	}
	var b [16]byte
	rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	r.mu.Lock()
	if r.binarySources == nil {
		r.binarySources = map[string]binarySource{}
	}
	r.binarySources[token] = src
	r.mu.Unlock()
	c.onDead = func() {
		r.mu.Lock()
		delete(r.binarySources, token)
		r.mu.Unlock()
	}
	return token
}

// localBinary finds, in this context, the binary for platform that the
// connection named by token should run: what it was given, else this
// program when the platform is this one's; nil when there is none.
func (r *Router) localBinary(token, platform string) (*bootstrap.Binary, error) {
	r.mu.Lock()
	src, ok := r.binarySources[token]
	r.mu.Unlock()
	if ok {
		path := src.paths[platform]
		if path == "" && src.fn != nil {
			p, err := src.fn(platform)
			if err != nil {
				return nil, fmt.Errorf("binary for %s: %w", platform, err)
			}
			path = p
		}
		if path != "" {
			return r.cachedBinary(path)
		}
	}
	if platform == runtime.GOOS+"/"+runtime.GOARCH {
		return r.selfBinary()
	}
	return nil, nil
}

// cachedBinary hashes (and later compresses) the file at path once per
// router.
func (r *Router) cachedBinary(path string) (*bootstrap.Binary, error) {
	r.mu.Lock()
	b, ok := r.otherBinaries[path]
	r.mu.Unlock()
	if ok {
		return b, nil
	}
	b, err := bootstrap.NewBinary(path)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if r.otherBinaries == nil {
		r.otherBinaries = map[string]*bootstrap.Binary{}
	}
	if prev, ok := r.otherBinaries[path]; ok {
		b = prev
	} else {
		r.otherBinaries[path] = b
	}
	r.mu.Unlock()
	return b, nil
}

// provider is what stage 1, run here for spec, uses for a far side of
// another platform: this context's own table when it made the connection,
// else a call to the context that did.
func (r *Router) provider(ctx context.Context, spec methodSpec) bootstrap.Provider {
	return func(platform string) (*bootstrap.Binary, error) {
		if spec.BinaryOwner == r.id {
			return r.localBinary(spec.BinaryToken, platform)
		}
		rep, err := binaryFunc.Call(ctx, r.Context(int(spec.BinaryOwner)), binaryRequest{Token: spec.BinaryToken, Platform: platform})
		if err != nil {
			return nil, fmt.Errorf("asking %s for it: %w", r.table.Load().name(spec.BinaryOwner), err)
		}
		if !rep.Found {
			return nil, nil
		}
		return bootstrap.NewBinaryGzip(rep.Hash, rep.Gzip), nil
	}
}
