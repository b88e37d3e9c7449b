package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/vmihailenco/msgpack/v5"
	"golang.org/x/sys/unix"
)

// The host side of fencing. An owner's context on a host takes the host's
// token (the lease's generation and epoch) in a file of the host
// account's cache directory; every call checks it; and a context whose
// token was overtaken exits. So an owner that was paused past its lease
// and wakes up can neither run a call on the host nor linger there.

// fenceToken is a host's fencing token: the generation of the lease
// bucket a lease was claimed in (bucket.go), then its epoch there (the
// revision that created it). Tokens order by generation, then epoch: a
// bucket created anew after the NATS store was lost numbers its
// revisions from 1 again, and its generation puts them above every epoch
// of the lost one.
type fenceToken struct {
	Gen   uint64 `msgpack:"gen,omitempty"`
	Epoch uint64 `msgpack:"epoch"`
}

// before reports whether t is older than u.
func (t fenceToken) before(u fenceToken) bool {
	return t.Gen < u.Gen || (t.Gen == u.Gen && t.Epoch < u.Epoch)
}

// String is "EPOCH", or "GEN/EPOCH" in a generation other than 0.
func (t fenceToken) String() string {
	if t.Gen == 0 {
		return strconv.FormatUint(t.Epoch, 10)
	}
	return strconv.FormatUint(t.Gen, 10) + "/" + strconv.FormatUint(t.Epoch, 10)
}

// fenceArgs name a host's token.
type fenceArgs struct {
	Cluster    string `msgpack:"cluster"`
	Host       string `msgpack:"host"`
	fenceToken `msgpack:",inline"`
}

// runArgs are a fenced call: the function and its encoded arguments.
type runArgs struct {
	fenceArgs
	Fn   string             `msgpack:"fn"`
	Args msgpack.RawMessage `msgpack:"args"`
}

// runResult is a fenced call's outcome: Code is "" when Fn returned
// Result, codeFenced when the token refused it, codeUnknownFn when no
// function of that name is registered, codeCall when Fn failed.
type runResult struct {
	Result msgpack.RawMessage `msgpack:"result,omitempty"`
	Code   string             `msgpack:"code,omitempty"`
	Msg    string             `msgpack:"msg,omitempty"`
}

var (
	// takeFence takes the host's token for a token, refusing when a
	// newer one holds it.
	takeFence = actors.Register("mitogo.cluster.fence.take", func(ctx context.Context, a fenceArgs) (struct{}, error) {
		return struct{}{}, updateFence(a, func(held fenceToken) (fenceToken, error) {
			if a.fenceToken.before(held) {
				return held, fmt.Errorf("host %s: epoch %v taken, %v holds it: %w", a.Host, a.fenceToken, held, ErrFenced)
			}
			return a.fenceToken, nil
		})
	})
	// holdFence runs for as long as the owner holds the host: it returns
	// when the caller cancels it, and ends this context, what its
	// functions started with it, when a newer epoch took the token (the
	// older owner may be paused and unable to end its context itself).
	holdFence = actors.Register("mitogo.cluster.fence.hold", func(ctx context.Context, a fenceArgs) (struct{}, error) {
		tick := time.NewTicker(fencePoll)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return struct{}{}, nil
			case <-tick.C:
			}
			held, err := readFence(a)
			if err != nil {
				continue
			}
			if a.fenceToken.before(held) {
				// The context ends as an orphan does: what its functions
				// started (a command of proc.run) ends with it rather
				// than running on beside the new owner's.
				cause := fmt.Errorf("mitogo cluster: host %s: epoch %v overtaken by %v; this context exits: %w", a.Host, a.fenceToken, held, ErrFenced)
				if err := actors.ExitOrphaned(ctx, cause); err != nil {
					return struct{}{}, fmt.Errorf("%v: %w", cause, err)
				}
				<-ctx.Done() // cancelled as the context ends
				return struct{}{}, cause
			}
		}
	})
	// checkFence returns the token the host holds: a streamed run
	// (builtins.Run, whose proc.run cannot go through runFenced) starts
	// only when its owner's token is the one held. A newer owner that
	// takes the token after the check ends the older owner's context,
	// and the command with it, within fencePoll (holdFence).
	checkFence = actors.Register("mitogo.cluster.fence.check", func(ctx context.Context, a fenceArgs) (fenceToken, error) {
		return readFence(a)
	})
	// runFenced checks the token and runs the function in this context.
	runFenced = actors.Register("mitogo.cluster.run", func(ctx context.Context, a runArgs) (runResult, error) {
		held, err := readFence(a.fenceArgs)
		if err != nil {
			return runResult{}, err
		}
		if held != a.fenceToken {
			return runResult{Code: codeFenced, Msg: fmt.Sprintf("host %s holds epoch %v, the call came with %v", a.Host, held, a.fenceToken)}, nil
		}
		res, err := actors.Function[msgpack.RawMessage, msgpack.RawMessage](a.Fn).Call(ctx, actors.CurrentContext(ctx), a.Args)
		switch {
		case errors.Is(err, actors.ErrUnknownFunction):
			return runResult{Code: codeUnknownFn, Msg: err.Error()}, nil
		case err != nil:
			return runResult{Code: codeCall, Msg: err.Error()}, nil
		}
		return runResult{Result: res}, nil
	})
)

// fencePoll is how often a held context looks for a newer token.
const fencePoll = 200 * time.Millisecond

// fencePath is the token file of a host, in the account's cache directory
// but outside mitogo's binary cache (which tools may empty).
func fencePath(a fenceArgs) (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("fence of host %s: %w", a.Host, err)
	}
	return filepath.Join(dir, "mitogo-cluster", token(a.Cluster), token(a.Host)+".epoch"), nil
}

// readFence returns the token a host holds, the zero token when none
// does. The file holds "EPOCH" in generation 0 (as builds before
// generations wrote it), else "GEN EPOCH".
func readFence(a fenceArgs) (fenceToken, error) {
	path, err := fencePath(a)
	if err != nil {
		return fenceToken{}, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return fenceToken{}, nil
	}
	if err != nil {
		return fenceToken{}, fmt.Errorf("fence of host %s: %w", a.Host, err)
	}
	t, err := parseFence(string(b))
	if err != nil {
		return fenceToken{}, fmt.Errorf("fence of host %s: %s: %w", a.Host, path, err)
	}
	return t, nil
}

// errFenceFile is the cause of a token file that cannot be read.
var errFenceFile = errors.New("not a token: want EPOCH or GEN EPOCH")

func parseFence(s string) (fenceToken, error) {
	f := strings.Fields(s)
	var t fenceToken
	var err error
	switch len(f) {
	case 1:
		t.Epoch, err = strconv.ParseUint(f[0], 10, 64)
	case 2:
		if t.Gen, err = strconv.ParseUint(f[0], 10, 64); err == nil {
			t.Epoch, err = strconv.ParseUint(f[1], 10, 64)
		}
	default:
		err = errFenceFile
	}
	if err != nil {
		return fenceToken{}, fmt.Errorf("%q: %w", s, err)
	}
	return t, nil
}

// formatFence is parseFence's inverse.
func formatFence(t fenceToken) string {
	if t.Gen == 0 {
		return strconv.FormatUint(t.Epoch, 10) + "\n"
	}
	return strconv.FormatUint(t.Gen, 10) + " " + strconv.FormatUint(t.Epoch, 10) + "\n"
}

// updateFence changes a host's token under an exclusive lock, so that two
// owners taking it at once are ordered.
func updateFence(a fenceArgs, next func(held fenceToken) (fenceToken, error)) error {
	path, err := fencePath(a)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("fence of host %s: %w", a.Host, err)
	}
	lock, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("fence of host %s: %w", a.Host, err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("fence of host %s: lock: %w", a.Host, err)
	}
	held, err := readFence(a)
	if err != nil {
		return err
	}
	n, err := next(held)
	if err != nil || n == held {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(formatFence(n)), 0o600); err != nil {
		return fmt.Errorf("fence of host %s: %w", a.Host, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("fence of host %s: %w", a.Host, err)
	}
	return nil
}
