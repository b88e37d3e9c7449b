package bootstrap

import (
	"os"
	"syscall"
	"testing"

	"github.com/mitogo/mitogo/transport"
)

func TestDetectRemovesMarker(t *testing.T) {
	t.Setenv(transport.EnvChild, "fd:3")
	spec, ok := Detect()
	if !ok || spec != "fd:3" {
		t.Fatalf("Detect = %q, %v", spec, ok)
	}
	if _, still := os.LookupEnv(transport.EnvChild); still {
		t.Fatal("marker left in the environment")
	}
	if _, ok := Detect(); ok {
		t.Fatal("second Detect found the marker")
	}
}

func TestOpenStreamRefusesBadSpecs(t *testing.T) {
	for _, spec := range []string{"tcp", "fd:x", "fd:1", "fd:987654"} {
		if _, err := OpenStream(spec); err == nil {
			t.Errorf("OpenStream(%q) succeeded", spec)
		}
	}
}

// blockingPipe is a pipe as sshd gives a session's command: blocking.
func blockingPipe(t *testing.T) (r, w int) {
	t.Helper()
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	return p[0], p[1]
}

// A child's stream on its stdout writes a frame's header and payload with
// one writev(2): the reader gets them in one read (an SSH session's sshd
// sent them in one packet then).
func TestStdioWritevOneWrite(t *testing.T) {
	inR, inW := blockingPipe(t)
	outR, outW := blockingPipe(t)
	defer syscall.Close(inW)
	r := os.NewFile(uintptr(outR), "r")
	defer r.Close()
	c, err := newStdioConn(inR, outW)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	header, payload := []byte{0, 0, 0, 5}, []byte("hello")
	if n, err := c.Writev([][]byte{header, payload}); err != nil || n != 9 {
		t.Fatalf("Writev: %d, %v", n, err)
	}
	buf := make([]byte, 64)
	n, err := r.Read(buf)
	if err != nil || string(buf[:n]) != "\x00\x00\x00\x05hello" {
		t.Fatalf("one read got %q, %v; want header and payload together", buf[:n], err)
	}
}
