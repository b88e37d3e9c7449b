package bootstrap

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// envTestBase names the base a fake child (see patchingChild) has this
// test binary patch from, when stage 1 runs the fake as the patcher.
const envTestBase = "MITOGO_TEST_PATCH_BASE"

// envTestStdio makes this test binary start as a child in stdio mode
// does (openStdio), announce itself and exit.
const envTestStdio = "MITOGO_TEST_STDIO"

// TestMain runs the tests with a cache directory of their own (the master
// keeps the images it sends there), or serves as a fake child's patcher,
// or starts as a child (envTestStdio).
func TestMain(m *testing.M) {
	if base := os.Getenv(envTestBase); base != "" && os.Getenv("MITOGO_CHILD") == PatchSpec {
		os.Exit(runPatcher(base, os.Stdin, os.Stdout, os.Stderr))
	}
	if os.Getenv(envTestStdio) != "" { // a child's start, as stage 1 execs it
		c, err := openStdio()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		c.Close()
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "mitogo-bootstrap-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Setenv("XDG_CACHE_HOME", dir)
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}
