package bootstrap

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ownUname is this machine's `uname -s -m`, as stage 1 prints it: a far
// side that prints the same runs this program's own build.
var ownUname = sync.OnceValue(func() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "" // no guess matches it
	}
	return unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Machine[:])
})

// writeGuess sends the guess line (see stage1's protocol), for a far side
// whose uname is uname, and early after it, in one write: stage 1 reads it
// once it has listed its builds.
func writeGuess(w io.Writer, hash, uname string, early []byte) error {
	if uname == "" || strings.ContainsAny(uname, "\n") {
		uname = "-" // matches no uname: stage 1 wants the hash
	}
	b := make([]byte, 0, 100+len(early))
	b = append(b, hash+" guess "+strconv.Itoa(len(early))+" "+uname+"\n"...)
	_, err := w.Write(append(b, early...))
	return err
}

// guessed finishes Run after stage 1 took the guess ("got"): it says have
// and execs the build, which announces itself.
func guessed(rw io.Reader, res Result, began time.Time) (Result, error) {
	answer, junk, err := readUntil(rw, func(l string) bool { return l == "have" || strings.HasPrefix(l, "MITOGO1-ERROR") })
	if err != nil {
		return res, fmt.Errorf("stage 1: %w%s", err, said(junk))
	}
	if answer != "have" {
		return res, stage1Error(answer)
	}
	answered := time.Now()
	res.Probe, res.Guessed = answered.Sub(began), true
	if _, junk, err := readUntil(rw, func(l string) bool { return l == ReadyLine }); err != nil {
		return res, fmt.Errorf("the child did not start: %w%s", err, said(junk))
	}
	res.Transfer = time.Since(answered)
	return res, nil
}
