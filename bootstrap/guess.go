package bootstrap

import (
	"io"
	"runtime"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ownUname is this machine's `uname -s -m`, as stage 1 prints it: a far
// side that prints the same runs this program's own build. It is "" (no
// guess matches it) where that uname is not this program's platform (a
// linux/386 build on an x86_64 kernel): there the far side's uname would
// call for another build.
var ownUname = sync.OnceValue(func() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	sys, machine := unix.ByteSliceToString(u.Sysname[:]), unix.ByteSliceToString(u.Machine[:])
	if platform(sys, machine) != runtime.GOOS+"/"+runtime.GOARCH {
		return ""
	}
	return sys + " " + machine
})

// writeGuess sends the guess line (see stage1's protocol), for a far side
// whose uname is uname, and early after it, in one write: stage 1 reads it
// once it has listed its builds.
func writeGuess(w io.Writer, hash, uname string, early []byte) error {
	if uname == "" {
		uname = "-" // matches no uname: stage 1 wants the hash
	}
	b := make([]byte, 0, 100+len(early))
	b = append(b, hash+" guess "+strconv.Itoa(len(early))+" "+uname+"\n"...)
	_, err := w.Write(append(b, early...))
	return err
}

// guessed finishes Run after stage 1 took the guess for hash and exec'd
// the build, which announces itself.
func guessed(rw io.Reader, res Result, began time.Time, hash string) (Result, error) {
	answered := time.Now()
	res.Probe, res.Guessed = answered.Sub(began), true
	return res, waitReady(rw, &res, answered, hash)
}
