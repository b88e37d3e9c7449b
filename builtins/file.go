package builtins

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/mitogo/mitogo/actors"
)

// ReadRequest is file.read's argument.
type ReadRequest struct {
	Path     string `msgpack:"path" json:"path"`
	MaxBytes int64  `msgpack:"max_bytes,omitempty" json:"max_bytes,omitempty"` // read at most this many bytes; 0: the whole file
}

// ReadResult is file.read's result.
type ReadResult struct {
	Data      []byte   `msgpack:"data" json:"data"`
	Mode      FileMode `msgpack:"mode" json:"mode"` // permission bits, as file.write takes them
	Size      int64    `msgpack:"size" json:"size"` // the file's size, which may exceed len(Data)
	Truncated bool     `msgpack:"truncated,omitempty" json:"truncated,omitempty"`
}

// WriteRequest is file.write's argument.
type WriteRequest struct {
	Path string `msgpack:"path" json:"path"`
	Data []byte `msgpack:"data" json:"data"`
	// Mode is the permission bits. When zero, a new file gets 0644 (less the
	// umask) and an existing one keeps its mode; when set, it is applied.
	Mode FileMode `msgpack:"mode,omitempty" json:"mode,omitempty"`
	// Atomic writes a temporary file in the same directory, syncs it and
	// renames it over Path, so readers see the old or the new content, never
	// a mix. The new file belongs to the caller's user.
	Atomic bool `msgpack:"atomic,omitempty" json:"atomic,omitempty"`
}

// WriteResult is file.write's result.
type WriteResult struct {
	Size int64 `msgpack:"size" json:"size"`
}

// StatRequest is file.stat's argument.
type StatRequest struct {
	Path string `msgpack:"path" json:"path"`
}

// StatResult is file.stat's result. It describes the file a symbolic link
// points to, like stat(1) -L.
type StatResult struct {
	Name    string    `msgpack:"name" json:"name"`
	Size    int64     `msgpack:"size" json:"size"`
	Mode    string    `msgpack:"mode" json:"mode"` // like ls: -rw-r--r--, drwxr-xr-x
	Perm    FileMode  `msgpack:"perm" json:"perm"` // the permission bits
	ModTime time.Time `msgpack:"mod_time" json:"mod_time"`
	IsDir   bool      `msgpack:"is_dir" json:"is_dir"`
	UID     uint32    `msgpack:"uid" json:"uid"`
	GID     uint32    `msgpack:"gid" json:"gid"`
}

// File functions.
var (
	// FileRead is file.read: the content and mode of a file.
	FileRead = actors.Register("file.read", readFile)
	// FileWrite is file.write: create or replace a file.
	FileWrite = actors.Register("file.write", writeFile)
	// FileStat is file.stat: size, mode, time and owner of a file.
	FileStat = actors.Register("file.stat", statFile)
)

func readFile(ctx context.Context, req ReadRequest) (ReadResult, error) {
	f, err := os.Open(req.Path)
	if err != nil {
		return ReadResult{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ReadResult{}, err
	}
	if fi.IsDir() {
		return ReadResult{}, &fs.PathError{Op: "read", Path: req.Path, Err: syscall.EISDIR}
	}
	var r io.Reader = f
	if req.MaxBytes > 0 {
		r = io.LimitReader(f, req.MaxBytes)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return ReadResult{}, err
	}
	res := ReadResult{Data: data, Mode: FileMode(fi.Mode().Perm()), Size: fi.Size()}
	if req.MaxBytes > 0 && int64(len(data)) == req.MaxBytes {
		// More may follow: a file in /proc has size 0 but content.
		var one [1]byte
		n, _ := f.Read(one[:])
		res.Truncated = n > 0
	}
	if int64(len(data)) > res.Size {
		res.Size = int64(len(data))
	}
	return res, nil
}

func writeFile(ctx context.Context, req WriteRequest) (WriteResult, error) {
	if req.Path == "" {
		return WriteResult{}, &fs.PathError{Op: "write", Path: req.Path, Err: syscall.ENOENT}
	}
	if req.Atomic {
		return writeAtomic(req)
	}
	mode := req.Mode.Perm()
	if mode == 0 {
		mode = 0o644
	}
	f, err := os.OpenFile(req.Path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return WriteResult{}, err
	}
	n, err := f.Write(req.Data)
	if err == nil && req.Mode != 0 {
		err = f.Chmod(req.Mode.Perm())
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return WriteResult{}, err
	}
	return WriteResult{Size: int64(n)}, nil
}

func writeAtomic(req WriteRequest) (WriteResult, error) {
	mode := req.Mode.Perm()
	if mode == 0 {
		mode = 0o644
		if fi, err := os.Stat(req.Path); err == nil {
			mode = fi.Mode().Perm()
		}
	}
	dir, base := filepath.Split(req.Path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".mitogo-*")
	if err != nil {
		return WriteResult{}, err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	n, err := tmp.Write(req.Data)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if err == nil {
		err = tmp.Close()
	}
	if err == nil {
		err = os.Rename(tmp.Name(), req.Path)
	}
	if err != nil {
		var le *os.LinkError
		if errors.As(err, &le) {
			// Name the file the caller asked for, not the temporary one.
			err = &fs.PathError{Op: "rename", Path: req.Path, Err: le.Err}
		}
		return WriteResult{}, err
	}
	ok = true
	return WriteResult{Size: int64(n)}, nil
}

func statFile(ctx context.Context, req StatRequest) (StatResult, error) {
	fi, err := os.Stat(req.Path)
	if err != nil {
		return StatResult{}, err
	}
	res := StatResult{Name: fi.Name(), Size: fi.Size(), Mode: fi.Mode().String(), Perm: FileMode(fi.Mode().Perm()),
		ModTime: fi.ModTime(), IsDir: fi.IsDir()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		res.UID, res.GID = st.Uid, st.Gid
	}
	return res, nil
}
