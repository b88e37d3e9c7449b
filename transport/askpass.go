package transport

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// Askpass answers a password prompt of sudo (-A) without reading the
// prompt: sudo runs a helper script of ours, which announces itself with a
// marker on stderr and reads one line from a FIFO that holds the password.
// So neither the far side's language nor a sudoers passprompt (with
// passprompt_override) can make us miss or misread the prompt, and a
// second run of the helper means the password was wrong. The password
// never touches the disk: it waits in the FIFO's kernel buffer.
type Askpass struct {
	dir    string
	script string
	fifo   *os.File
	marker []byte

	mu      sync.Mutex
	asked   int
	onWrong func()
}

// NewAskpass prepares the helper for password in a private temporary
// directory. Env holds what sudo needs to find it.
func NewAskpass(password string) (*Askpass, error) {
	dir, err := os.MkdirTemp("", "mitogo-askpass-")
	if err != nil {
		return nil, fmt.Errorf("askpass: %w", err)
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	a := &Askpass{dir: dir, script: filepath.Join(dir, "askpass"), marker: []byte("MITOGO-ASKPASS-" + hex.EncodeToString(rnd[:]))}
	fifo := filepath.Join(dir, "password")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		a.Close()
		return nil, fmt.Errorf("askpass: %w", err)
	}
	// O_RDWR never blocks on a FIFO, and keeps it open, so the helper finds
	// the line whenever it runs, and a second run waits instead of reading EOF.
	if a.fifo, err = os.OpenFile(fifo, os.O_RDWR, 0); err != nil {
		a.Close()
		return nil, fmt.Errorf("askpass: %w", err)
	}
	if _, err := io.WriteString(a.fifo, password+"\n"); err != nil {
		a.Close()
		return nil, fmt.Errorf("askpass: %w", err)
	}
	script := fmt.Sprintf("#!/bin/sh\necho %s >&2\nexec head -n 1 %s\n", a.marker, fifo)
	if err := os.WriteFile(a.script, []byte(script), 0o700); err != nil {
		a.Close()
		return nil, fmt.Errorf("askpass: %w", err)
	}
	return a, nil
}

// Env is the environment that points sudo -A at the helper.
func (a *Askpass) Env() []string { return []string{"SUDO_ASKPASS=" + a.script} }

// AskpassEnv is the environment that makes the OpenSSH client ask the
// helper for passwords, with or without a terminal.
func (a *Askpass) AskpassEnv() []string {
	return []string{"SSH_ASKPASS=" + a.script, "SSH_ASKPASS_REQUIRE=force"}
}

// Watch wraps the far side's stderr: it counts the helper's runs, calls
// onWrong when sudo asks a second time, and removes the helper's marker
// lines, so that what the caller reads is only what the far side printed.
func (a *Askpass) Watch(r io.ReadCloser, onWrong func()) io.ReadCloser {
	a.mu.Lock()
	a.onWrong = onWrong
	a.mu.Unlock()
	return &askpassReader{ReadCloser: r, a: a, line: append(append([]byte(nil), a.marker...), '\n')}
}

// Asked is how many times sudo ran the helper.
func (a *Askpass) Asked() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.asked
}

// Close removes the helper and the FIFO.
func (a *Askpass) Close() {
	if a.fifo != nil {
		a.fifo.Close()
	}
	os.RemoveAll(a.dir)
}

type askpassReader struct {
	io.ReadCloser
	a       *Askpass
	line    []byte // the marker line the helper prints
	pending []byte // read, not yet returned: may hold the start of a marker line
	err     error  // the underlying reader's error, returned once pending is empty
}

func (r *askpassReader) Read(p []byte) (int, error) {
	for {
		if keep := r.held(); len(r.pending) > keep || (r.err != nil && len(r.pending) > 0) {
			if r.err != nil {
				keep = 0
			}
			n := copy(p, r.pending[:len(r.pending)-keep])
			r.pending = r.pending[n:]
			return n, nil
		}
		if r.err != nil {
			return 0, r.err
		}
		buf := make([]byte, max(len(p), 512))
		n, err := r.ReadCloser.Read(buf)
		r.pending, r.err = append(r.pending, buf[:n]...), err
		if c := bytes.Count(r.pending, r.line); c > 0 {
			r.pending = bytes.ReplaceAll(r.pending, r.line, nil)
			r.a.mu.Lock()
			r.a.asked += c
			wrong := r.a.asked >= 2
			onWrong := r.a.onWrong
			r.a.mu.Unlock()
			if wrong && onWrong != nil {
				onWrong()
			}
		}
	}
}

// held is the length of the longest end of pending that begins the
// marker line: it waits for the next read to tell.
func (r *askpassReader) held() int {
	for k := min(len(r.pending), len(r.line)-1); k > 0; k-- {
		if bytes.HasPrefix(r.line, r.pending[len(r.pending)-k:]) {
			return k
		}
	}
	return 0
}
