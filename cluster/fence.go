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
// token (the lease epoch) in a file of the host account's cache
// directory; every call checks it; and a context whose token was
// overtaken exits. So an owner that was paused past its lease and wakes
// up can neither run a call on the host nor linger there.

// fenceArgs name a host's token.
type fenceArgs struct {
	Cluster string `msgpack:"cluster"`
	Host    string `msgpack:"host"`
	Epoch   uint64 `msgpack:"epoch"`
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
	// takeFence takes the host's token for an epoch, refusing when a
	// newer epoch holds it.
	takeFence = actors.Register("mitogo.cluster.fence.take", func(ctx context.Context, a fenceArgs) (struct{}, error) {
		return struct{}{}, updateFence(a, func(held uint64) (uint64, error) {
			if held > a.Epoch {
				return held, fmt.Errorf("host %s: epoch %d taken, %d holds it: %w", a.Host, a.Epoch, held, ErrFenced)
			}
			return a.Epoch, nil
		})
	})
	// holdFence runs for as long as the owner holds the host: it returns
	// when the caller cancels it, and ends this process when a newer
	// epoch took the token (the older owner may be paused and unable to
	// end its context itself).
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
			if held > a.Epoch {
				fmt.Fprintf(os.Stderr, "mitogo cluster: host %s: epoch %d overtaken by %d; this context exits\n", a.Host, a.Epoch, held)
				os.Exit(0)
			}
		}
	})
	// checkFence returns the epoch holding the host's token: a streamed
	// run (builtins.Run, whose proc.run cannot go through runFenced)
	// starts only when its owner's epoch holds it. A newer owner that
	// takes the token after the check ends the older owner's context,
	// and the command with it, within fencePoll (holdFence).
	checkFence = actors.Register("mitogo.cluster.fence.check", func(ctx context.Context, a fenceArgs) (uint64, error) {
		return readFence(a)
	})
	// runFenced checks the token and runs the function in this context.
	runFenced = actors.Register("mitogo.cluster.run", func(ctx context.Context, a runArgs) (runResult, error) {
		held, err := readFence(a.fenceArgs)
		if err != nil {
			return runResult{}, err
		}
		if held != a.Epoch {
			return runResult{Code: codeFenced, Msg: fmt.Sprintf("host %s holds epoch %d, the call came with %d", a.Host, held, a.Epoch)}, nil
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

// readFence returns the epoch holding a host's token, 0 when none does.
func readFence(a fenceArgs) (uint64, error) {
	path, err := fencePath(a)
	if err != nil {
		return 0, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("fence of host %s: %w", a.Host, err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("fence of host %s: %s: %w", a.Host, path, err)
	}
	return n, nil
}

// updateFence changes a host's token under an exclusive lock, so that two
// owners taking it at once are ordered.
func updateFence(a fenceArgs, next func(held uint64) (uint64, error)) error {
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
	if err := os.WriteFile(tmp, []byte(strconv.FormatUint(n, 10)+"\n"), 0o600); err != nil {
		return fmt.Errorf("fence of host %s: %w", a.Host, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("fence of host %s: %w", a.Host, err)
	}
	return nil
}
