package bootstrap

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The title replaces the command line the kernel reports, cut to the room
// the original one had, and os.Args keeps the original arguments.
func TestSetProcessTitle(t *testing.T) {
	if os.Getenv("MITOGO_TEST_PROCTITLE") != "" {
		// The helper process: set the title, print what /proc shows.
		before := strings.Join(os.Args, " ")
		title := "mitogo: " + strings.Repeat("x", 200)
		if err := SetProcessTitle("mitogo-with-a-long-name", title); err != nil {
			t.Fatal(err)
		}
		cmdline, _ := os.ReadFile("/proc/self/cmdline")
		comm, _ := os.ReadFile("/proc/self/comm")
		if after := strings.Join(os.Args, " "); after != before {
			t.Fatalf("os.Args changed: %q, was %q", after, before)
		}
		os.Stdout.Write(append(append(cmdline, '|'), comm...))
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSetProcessTitle$")
	cmd.Args[0] = "short"
	cmd.Env = append(os.Environ(), "MITOGO_TEST_PROCTITLE=1", "GORACE=atexit_sleep_ms=0")
	room := len(strings.Join(cmd.Args, "\x00")) + 1
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v: %s", err, out)
	}
	cmdline, comm, _ := bytes.Cut(out, []byte("|"))
	comm, _, _ = bytes.Cut(comm, []byte("\n")) // the test framework's PASS follows
	want := ("mitogo: " + strings.Repeat("x", 200))[:room-1] + "\x00"
	if string(cmdline) != want {
		t.Errorf("cmdline %q, want %q (the title cut to the original %d bytes)", cmdline, want, room)
	}
	if string(comm) != "mitogo-with-a-l" {
		t.Errorf("comm %q, want the first 15 bytes of the name", comm)
	}
}

// readProc reads a whole file, past its first buffer, as os.ReadFile does;
// writeProc writes one; both name the path in their errors.
func TestReadWriteProc(t *testing.T) {
	path := t.TempDir() + "/f"
	want := bytes.Repeat([]byte("0123456789"), 500)
	if err := writeProc(path, want); err == nil {
		t.Fatal("writeProc created a file; it writes existing ones only")
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeProc(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := readProc(path)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("readProc = %d bytes, %v; want the %d written", len(got), err, len(want))
	}
	if _, err := readProc(path + ".missing"); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Fatalf("readProc of a missing file: %v", err)
	}
}
