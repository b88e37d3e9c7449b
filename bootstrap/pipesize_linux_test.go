package bootstrap

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// A child's stream pipes are grown to pipeSize; a descriptor that is not
// a pipe is left alone.
func TestGrowPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	growPipe(int(r.Fd()))
	if n, err := unix.FcntlInt(r.Fd(), unix.F_GETPIPE_SZ, 0); err != nil || n != pipeSize {
		t.Fatalf("pipe size %d (%v), want %d", n, err, pipeSize)
	}
	f, err := os.CreateTemp(t.TempDir(), "file")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	growPipe(int(f.Fd())) // not a pipe: nothing to do, nothing to fail
}
