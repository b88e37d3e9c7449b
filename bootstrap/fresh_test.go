package bootstrap

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A cached build damaged in place (cut short by a crash: here one that
// dies of SIGSEGV at once) fails every connect, guessed or not, with
// ErrCachedBuildFailed naming the file; a Fresh connect replaces it, and
// the next connect runs the good build from the cache.
func TestStage1FreshReplacesADamagedBuild(t *testing.T) {
	bin := fakeChild(t)
	for _, sh := range shells(t) {
		t.Run(filepath.Base(sh[0]), func(t *testing.T) {
			env := []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
			res, err := runStage1(t, sh, env, bin, nil)
			if err != nil || !res.Uploaded {
				t.Fatalf("first contact: %+v %v", res, err)
			}
			cached := filepath.Join(res.CacheDir, bin.Hash)
			if err := os.WriteFile(cached, []byte("#!/bin/sh\nkill -SEGV $$\n"), 0o700); err != nil {
				t.Fatal(err)
			}
			for _, guess := range []bool{true, false} {
				_, err := runStage1With(t, append(sh[:len(sh):len(sh)], "-c", Stage1()), env, bin, nil, Options{NoForms: true, Guess: guess})
				if !errors.Is(err, ErrCachedBuildFailed) || !strings.Contains(err.Error(), cached) {
					t.Fatalf("guess %v: %v; want ErrCachedBuildFailed naming %s", guess, err, cached)
				}
			}
			res, err = runStage1With(t, append(sh[:len(sh):len(sh)], "-c", Stage1()), env, bin, nil, Options{NoForms: true, Fresh: true})
			if err != nil || !res.Uploaded {
				t.Fatalf("fresh: %+v %v; want the build sent again", res, err)
			}
			got, _ := os.ReadFile(cached)
			want, _ := os.ReadFile(bin.Path)
			if !bytes.Equal(got, want) {
				t.Fatalf("the cache holds %d bytes after the fresh connect, want the build's %d", len(got), len(want))
			}
			if res, err := runStage1With(t, append(sh[:len(sh):len(sh)], "-c", Stage1()), env, bin, nil, Options{NoForms: true, Guess: true}); err != nil || res.Uploaded {
				t.Fatalf("after the repair: %+v %v; want the cached build run", res, err)
			}
		})
	}
}

// A fresh connect where a delta is at hand (an earlier build is cached
// beside the damaged one): the damaged build is still replaced, by the
// delta after need, not run because the delta was sent with the hash.
func TestStage1FreshWithAnEarlierBuildCached(t *testing.T) {
	v1 := patchingChild(t, "fresh-one", false)
	v2 := patchingChild(t, "fresh-two", false)
	env := []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	if _, err := runStage1(t, []string{"/bin/sh"}, env, v1, nil); err != nil {
		t.Fatal(err)
	}
	res, err := runStage1(t, []string{"/bin/sh"}, env, v2, nil)
	if err != nil || res.Delta != v1.Hash {
		t.Fatalf("v2 after v1: %+v %v; want a delta", res, err)
	}
	cached := filepath.Join(res.CacheDir, v2.Hash)
	if err := os.WriteFile(cached, []byte("#!/bin/sh\nkill -SEGV $$\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	res, err = runStage1With(t, []string{"/bin/sh", "-c", Stage1()}, env, v2, nil, Options{NoForms: true, Fresh: true})
	if err != nil || !res.Uploaded {
		t.Fatalf("fresh: %+v %v; want v2 sent again", res, err)
	}
	got, _ := os.ReadFile(cached)
	want, _ := os.ReadFile(v2.Path)
	if !bytes.Equal(got, want) {
		t.Fatalf("the cache holds %d bytes, want v2's %d", len(got), len(want))
	}
}

// A cached build that is whole but does not start there (its environment
// keeps it from it: here a variable; a bad GOMEMLIMIT would) is not taken
// for damaged: the fresh connect finds its hash right, keeps it, sends
// nothing, and fails again.
func TestStage1FreshKeepsAWholeBuild(t *testing.T) {
	bin := fakeChildWith(t, "[ -n \"$FAILSTART\" ] && { echo cannot start >&2; exit 3; }\n")
	env := []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	res, err := runStage1(t, []string{"/bin/sh"}, env, bin, nil)
	if err != nil || !res.Uploaded {
		t.Fatalf("first contact: %+v %v", res, err)
	}
	cached := filepath.Join(res.CacheDir, bin.Hash)
	env = append(env, "FAILSTART=1")
	for _, fresh := range []bool{false, true} {
		res, err := runStage1With(t, []string{"/bin/sh", "-c", Stage1()}, env, bin, nil, Options{NoForms: true, Guess: !fresh, Fresh: fresh})
		var cbe *CachedBuildError
		if !errors.As(err, &cbe) || cbe.Path != cached || res.Uploaded {
			t.Fatalf("fresh %v: %+v, %v; want a *CachedBuildError for %s, nothing sent", fresh, res, err, cached)
		}
	}
	got, _ := os.ReadFile(cached)
	want, _ := os.ReadFile(bin.Path)
	if !bytes.Equal(got, want) {
		t.Fatal("the whole build was removed or changed")
	}
}
