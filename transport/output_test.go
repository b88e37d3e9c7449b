package transport

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// A side channel is read to its end whether or not anyone reads the pump:
// a writer is never held up by a missing reader. What is over the bound is
// dropped and counted.
func TestOutputPumpReadsWithoutAReader(t *testing.T) {
	pr, pw := io.Pipe()
	p := newOutputPump(pr)
	big := bytes.Repeat([]byte("x"), outputPumpMax+1000)
	if _, err := pw.Write(big); err != nil { // returns only once the pump read it all
		t.Fatal(err)
	}
	pw.Close()
	p.Wait()
	got, err := io.ReadAll(p)
	if err != nil {
		t.Fatal(err)
	}
	kept, note, _ := strings.Cut(string(got), "\n")
	if len(kept) != outputPumpMax || strings.Trim(kept, "x") != "" {
		t.Fatalf("kept %d bytes, want %d", len(kept), outputPumpMax)
	}
	if note != "[mitogo: 1000 bytes of output dropped: they came faster than they were read]\n" {
		t.Fatalf("note %q", note)
	}
}

// After Close the pump reads on, and drops what comes.
func TestOutputPumpDrainsAfterClose(t *testing.T) {
	pr, pw := io.Pipe()
	p := newOutputPump(pr)
	if _, err := pw.Write([]byte("before\n")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 64)
	if n, err := p.Read(b); err != nil || string(b[:n]) != "before\n" {
		t.Fatalf("read %q, %v", b[:n], err)
	}
	p.Close()
	if n, err := p.Read(b); n != 0 || err != io.EOF {
		t.Fatalf("read after close: %d, %v", n, err)
	}
	if _, err := pw.Write(bytes.Repeat([]byte("y"), 2*outputPumpMax)); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	p.Wait()
}
