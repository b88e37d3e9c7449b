package bootstrap

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// maxCommLen is the longest process name the kernel keeps (TASK_COMM_LEN
// less its NUL).
const maxCommLen = 15

// SetProcessTitle makes ps show this process as title (ps -f, ps aux,
// /proc/PID/cmdline) and name (ps -o comm, top, pgrep; at most 15 bytes are
// kept). A child calls it once it knows its context's name, so that ps
// shows "mitogo: ssh:web1/sudo:root" rather than the path it was started
// by, which for a child started over stage 1 is a cache file named by a
// hash.
//
// Linux reads a process's command line from the memory its argv strings
// were placed in at exec (arg_start to arg_end in /proc/self/stat). Go's
// os.Args strings point into that memory; SetProcessTitle checks that they
// still do, copies them, and writes title over the area, cut to fit and
// padded with NULs: the area cannot grow. Its room is the length of the
// original command line: the executable's path for a local child, the
// cache path (over 64 bytes) for a child started by stage 1. The name is
// written to /proc/self/comm, which names the whole process whatever thread
// writes it. Unlike `exec -a`, which POSIX sh lacks (dash), this works
// however the process was started.
//
// It must be called at most once, before other goroutines read os.Args.
// Strings taken from os.Args before the call (flag.CommandLine's name)
// show the title afterwards.
func SetProcessTitle(name, title string) error {
	if len(name) > maxCommLen {
		name = name[:maxCommLen]
	}
	if err := writeProc("/proc/self/comm", []byte(name)); err != nil {
		return fmt.Errorf("bootstrap: setting the process name: %w", err)
	}
	start, end, err := argvArea()
	if err != nil {
		return err
	}
	args := os.Args
	if len(args) == 0 || uintptr(unsafe.Pointer(unsafe.StringData(args[0]))) != start {
		return ErrNoArgvArea
	}
	size := 0
	for _, a := range args {
		size += len(a) + 1
	}
	if uintptr(size) != end-start {
		return ErrNoArgvArea
	}
	area := unsafe.Slice(unsafe.StringData(args[0]), size)
	copied := make([]string, len(args))
	for i, a := range args {
		copied[i] = strings.Clone(a)
	}
	os.Args = copied
	// The last byte stays NUL: the kernel then reads the whole area, and ps
	// shows the title with the padding as spaces it trims.
	n := copy(area[:size-1], title)
	clear(area[n:])
	return nil
}

// argvArea returns where the kernel reads this process's command line
// from: fields 48 and 49 of /proc/self/stat (Linux 3.5 and later).
func argvArea() (start, end uintptr, err error) {
	stat, err := readProc("/proc/self/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %w", ErrNoArgvArea, err)
	}
	// The name in parentheses may hold spaces: count fields after it.
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return 0, 0, ErrNoArgvArea
	}
	fields := strings.Fields(string(stat[i+1:]))
	const first = 3 // the field number of fields[0]
	if len(fields) < 49-first+1 {
		return 0, 0, ErrNoArgvArea
	}
	s, err1 := strconv.ParseUint(fields[48-first], 10, 64)
	e, err2 := strconv.ParseUint(fields[49-first], 10, 64)
	if err1 != nil || err2 != nil || s == 0 || e <= s {
		return 0, 0, ErrNoArgvArea
	}
	return uintptr(s), uintptr(e), nil
}

// writeProc and readProc write and read a file of /proc with the system
// calls alone: an *os.File's setup (its fcntl calls, trying the poller)
// costs as much again, and a child pays it before it answers its parent.
func writeProc(path string, b []byte) error {
	fd, err := openProc(path, unix.O_WRONLY)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	for {
		_, err = unix.Write(fd, b)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return &os.PathError{Op: "write", Path: path, Err: err}
	}
	return nil
}

func readProc(path string) ([]byte, error) {
	fd, err := openProc(path, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	b := make([]byte, 0, 1024)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := unix.Read(fd, b[len(b):cap(b)])
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		case n == 0:
			return b, nil
		}
		b = b[:len(b)+n]
	}
}

func openProc(path string, mode int) (int, error) {
	for {
		fd, err := unix.Open(path, mode|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
}
