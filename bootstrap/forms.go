package bootstrap

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// A first contact sends the whole image. The pipelined gzip -1 pieces
// (binary.go) cost nothing to prepare, but a better compressor makes the
// upload much smaller (a 13.5 MB image: gzip -1 5.7 MB, gzip -9 5.1 MB,
// zstd -19 4.3 MB, xz with the x86 filter 3.7 MB), at a price paid once
// per build: xz takes some 8 s of CPU. So the better form is made in the
// background the first time a build is sent, by the master's own tool, and
// kept in the master's cache directory beside the image it was made from;
// every later upload of that build, by any process of this account, sends
// it when the far side can unpack it (stage 1 reports its decoders).
//
// A form is named <image hash>.<format>.<sha256 of the form>: the master
// checks the form against its name before it sends it, so a truncated or
// corrupt file is never sent (it is removed, and made again). While it is
// being made it is <image hash>.<format>.tmp, created exclusively and
// flock'ed by the job that writes it: that file is the lock that keeps 20
// parallel first contacts, in one process or many, from compressing 20
// times. A .tmp no one holds is a job that died, and is taken over.
//
// The job is a shell that outlives the master (it runs in its own session,
// at the lowest priority), so a short run of the program still leaves the
// form for the next. Forms go with their build when the cache is pruned.

// formFormat is one compressed form of an image.
type formFormat struct {
	name string   // the format's name in stage 1's protocol and in the file name
	tool string   // the master's program that makes it
	args []string // its arguments, to compress stdin to stdout
}

// formFormats are the formats a form may take, the smallest first. The xz
// preset is 6: on a Go binary it gives what 9e gives (an 8 MiB dictionary
// covers what matters) and the far side unpacks it in 9 MiB of memory,
// not 65.
var formFormats = []formFormat{
	{name: "xz", tool: "xz", args: []string{"-T1", "-c", "--lzma2=preset=6"}},
	{name: "zstd", tool: "zstd", args: []string{"-q", "-c", "-19"}},
	{name: "gz", tool: "gzip", args: []string{"-c", "-9", "-n"}},
}

// ErrFormCorrupt is why a form in the cache was not sent: its bytes do not
// match the sha256 in its name.
var ErrFormCorrupt = errors.New("compressed form does not match its name")

// formArgs returns the arguments of f's tool for an image of platform: xz
// gets its x86 filter for an x86 image (every xz has it; the arm64 filter
// is too recent to count on).
func formArgs(f formFormat, platform string) []string {
	args := append([]string(nil), f.args...)
	if f.name == "xz" && (strings.HasSuffix(platform, "/amd64") || strings.HasSuffix(platform, "/386")) {
		args = append(args[:2:2], "--x86", args[2])
	}
	return args
}

// formFor returns the format of the form for a far side that unpacks
// decoders: the smallest that it unpacks and the master's tools make;
// false when there is none (the far side has only gzip and the master no
// gzip tool, say).
func formFor(decoders map[string]bool) (formFormat, bool) {
	for _, f := range formFormats {
		if !decoders[f.name] {
			continue
		}
		if _, err := exec.LookPath(f.tool); err == nil {
			return f, true
		}
	}
	return formFormat{}, false
}

// readyForm returns the form in format f of the image hash from dir when
// it is there and checks; nil when it is not (yet). A form that does not
// check is removed.
func readyForm(dir, hash string, f formFormat) []byte {
	paths, _ := filepath.Glob(filepath.Join(dir, hash+"."+f.name+".*"))
	for _, p := range paths {
		sum := strings.TrimPrefix(filepath.Base(p), hash+"."+f.name+".")
		if !isHash(sum) {
			continue // the .tmp of a job under way
		}
		data, err := checkForm(p, sum)
		if err == nil {
			return data
		}
		os.Remove(p)
	}
	return nil
}

// checkForm reads the form at path and checks it against its sha256.
func checkForm(path, sum string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	got := sha256.Sum256(data)
	if hex.EncodeToString(got[:]) != sum {
		return nil, fmt.Errorf("%s: %w", path, ErrFormCorrupt)
	}
	return data, nil
}

// formJob is the shell program that makes a form: $1 is the image, $2 the
// .tmp (locked by the master, whose lock fd 3 holds until the job ends),
// $3 the name without the sum, $4 the niceness; the rest is the
// compressor's command. The form is renamed into place only when the
// compressor and the hash succeeded.
const formJob = `I=$1 T=$2 F=$3 P=$4; shift 4
( if nice -n "$P" "$@" <"$I" >"$T"; then S=$( (sha256sum || shasum -a 256) <"$T" 2>/dev/null); S=${S%% *}; [ ${#S} -eq 64 ] && mv -f "$T" "$F.$S" && exit 0; fi; rm -f "$T" ) </dev/null >/dev/null 2>&1 &`

// startForm starts the background job that makes image's form f in dir,
// unless the form is there or a job already makes it. It reports whether
// it started one.
func startForm(dir, hash string, f formFormat, platform, nice string) bool {
	if readyForm(dir, hash, f) != nil {
		return false
	}
	tool, err := exec.LookPath(f.tool)
	if err != nil {
		return false
	}
	tmp := filepath.Join(dir, hash+"."+f.name+".tmp")
	lock, ok := lockForm(tmp)
	if !ok {
		return false
	}
	defer lock.Close() // the job holds its own copy of the lock
	if readyForm(dir, hash, f) != nil {
		os.Remove(tmp) // a job finished between the look and the lock
		return false
	}
	argv := append([]string{"-c", formJob, "sh", filepath.Join(dir, hash), tmp, filepath.Join(dir, hash+"."+f.name), nice, tool}, formArgs(f, platform)...)
	cmd := exec.Command("/bin/sh", argv...)
	cmd.ExtraFiles = []*os.File{lock}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // a ^C to the master does not stop it
	if err := cmd.Run(); err != nil {                    // the shell returns once the job is started
		os.Remove(tmp)
		return false
	}
	return true
}

// lockForm creates and locks the .tmp at path; when it exists and someone
// holds it, a job is under way (false). One that no one holds is left by a
// job that died: it is taken over. The lock is taken on a file of a name
// of its own and then linked to path, so no one ever sees path unlocked
// while its job runs.
func lockForm(path string) (*os.File, bool) {
	for range 3 {
		f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
		if err != nil {
			return nil, false
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			os.Remove(f.Name())
			return nil, false
		}
		err = os.Link(f.Name(), path)
		os.Remove(f.Name())
		if err == nil {
			return f, true
		}
		f.Close()
		if !errors.Is(err, fs.ErrExist) {
			return nil, false
		}
		old, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			continue // gone meanwhile: try again
		}
		if syscall.Flock(int(old.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			old.Close()
			return nil, false // a job holds it
		}
		held, err1 := old.Stat()
		now, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(held, now) {
			return old, true // a dead job's: ours now
		}
		old.Close() // renamed or removed meanwhile: try again
	}
	return nil, false
}

// WaitForms returns once no job is making a form of any build in dir: the
// jobs outlive the process that started them, and a test or a tool that
// removes the directory waits for them first.
func WaitForms(dir string) {
	paths, _ := filepath.Glob(filepath.Join(dir, "*.tmp"))
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		syscall.Flock(int(f.Fd()), syscall.LOCK_SH) // blocks while the job runs
		f.Close()
	}
}
