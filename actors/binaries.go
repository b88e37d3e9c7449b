package actors

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"runtime"
	"strings"

	"github.com/mitogo/mitogo/bootstrap"
	"github.com/mitogo/mitogo/connect"
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
	HashOnly bool   `msgpack:"hash_only"` // the hash, to learn whether the far side has it
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
	if req.HashOnly {
		return binaryReply{Found: true, Hash: b.Hash}, nil
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
	r.addSource(token, src)
	c.onDead = func() { r.dropSource(token) }
	return token
}

// localBinary finds, in this context, the binary for platform that the
// connection named by token should run: what it was given, else this
// program when the platform is this one's; nil when there is none.
func (r *Router) localBinary(token, platform string) (*bootstrap.Binary, error) {
	if !validPlatform(platform) {
		return nil, fmt.Errorf("%q is not a platform (GOOS/GOARCH)", platform)
	}
	src, ok := r.source(token)
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
	if b, ok := r.other(path); ok {
		return b, nil
	}
	b, err := bootstrap.NewBinary(path)
	if err != nil {
		return nil, err
	}
	return r.keep(path, b), nil
}

// validPlatform reports whether p has the shape of GOOS/GOARCH; the far
// side's uname and a child's request are not trusted to.
func validPlatform(p string) bool {
	goos, arch, ok := strings.Cut(p, "/")
	word := func(s string) bool {
		for _, c := range s {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
				return false
			}
		}
		return s != ""
	}
	return ok && word(goos) && word(arch)
}

// provider is what stage 1, run here for spec, uses for a far side of
// another platform: this context's own table when it made the connection,
// else the context that did, asked first for the hash only (the far side
// may have the binary cached) and for the bytes when they are needed,
// which are then kept here by hash for the next connections.
func (r *Router) provider(ctx context.Context, spec connect.Spec) bootstrap.Provider {
	return func(platform string) (*bootstrap.Binary, error) {
		if spec.BinaryOwner == r.id {
			return r.localBinary(spec.BinaryToken, platform)
		}
		owner := r.Context(int(spec.BinaryOwner))
		ownerName := r.table.Load().name(spec.BinaryOwner)
		req := binaryRequest{Token: spec.BinaryToken, Platform: platform, HashOnly: true}
		rep, err := binaryFunc.Call(ctx, owner, req)
		if err != nil {
			return nil, fmt.Errorf("asking %s for it: %w", ownerName, err)
		}
		if !rep.Found {
			return nil, nil
		}
		key := "sha256:" + rep.Hash
		if b, ok := r.other(key); ok {
			return b, nil
		}
		hash := rep.Hash
		return bootstrap.NewBinaryFetch(hash, func() ([]byte, error) {
			req.HashOnly = false
			rep, err := binaryFunc.Call(ctx, owner, req)
			if err != nil {
				return nil, fmt.Errorf("fetching it from %s: %w", ownerName, err)
			}
			if !rep.Found || rep.Hash != hash {
				return nil, fmt.Errorf("%s no longer has the binary for %s it named", ownerName, platform)
			}
			r.keep(key, bootstrap.NewBinaryGzip(hash, rep.Gzip))
			return rep.Gzip, nil
		}), nil
	}
}
