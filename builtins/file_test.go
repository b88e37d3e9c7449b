package builtins_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/builtins"
)

func TestFileWriteReadStat(t *testing.T) {
	_, c := child(t)
	ctx := ctxT(t)
	dir := t.TempDir()
	for _, atomic := range []bool{false, true} {
		path := filepath.Join(dir, "f")
		if atomic {
			path += "-atomic"
		}
		data := []byte("hello\x00world\n")
		w, err := builtins.FileWrite.Call(ctx, c, builtins.WriteRequest{Path: path, Data: data, Mode: 0o600, Atomic: atomic})
		if err != nil {
			t.Fatal(err)
		}
		if w.Size != int64(len(data)) {
			t.Errorf("write size = %d, want %d", w.Size, len(data))
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("file holds %q, %v; want %q", got, err, data)
		}
		rd, err := builtins.FileRead.Call(ctx, c, builtins.ReadRequest{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(rd.Data, data) || rd.Mode != 0o600 || rd.Size != int64(len(data)) || rd.Truncated {
			t.Errorf("read = %+v", rd)
		}
		st, err := builtins.FileStat.Call(ctx, c, builtins.StatRequest{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(path)
		if st.Name != filepath.Base(path) || st.Size != int64(len(data)) || st.Mode != "-rw-------" || st.Perm != 0o600 ||
			st.IsDir || int(st.UID) != os.Getuid() || int(st.GID) != os.Getgid() || !st.ModTime.Equal(fi.ModTime()) {
			t.Errorf("stat = %+v; file %v %v", st, fi.Mode(), fi.ModTime())
		}
	}
	// No temporary files are left behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("directory holds %d entries, want 2: %v", len(entries), entries)
	}
}

func TestFileReadMaxBytes(t *testing.T) {
	_, c := child(t)
	path := filepath.Join(t.TempDir(), "f")
	os.WriteFile(path, []byte("0123456789"), 0o644)
	rd, err := builtins.FileRead.Call(ctxT(t), c, builtins.ReadRequest{Path: path, MaxBytes: 4})
	if err != nil {
		t.Fatal(err)
	}
	if string(rd.Data) != "0123" || rd.Size != 10 || !rd.Truncated || rd.Mode != 0o644 {
		t.Errorf("read = %+v", rd)
	}
}

func TestFileStatDir(t *testing.T) {
	_, c := child(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o750)
	st, err := builtins.FileStat.Call(ctxT(t), c, builtins.StatRequest{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !st.IsDir || st.Mode != "drwxr-x---" {
		t.Errorf("stat = %+v", st)
	}
}

// OS errors come back as they were: their type and message.
func TestFileErrors(t *testing.T) {
	_, c := child(t)
	ctx := ctxT(t)
	missing := filepath.Join(t.TempDir(), "missing")
	_, err := builtins.FileRead.Call(ctx, c, builtins.ReadRequest{Path: missing})
	var ce *actors.CallError
	if !errors.As(err, &ce) || ce.Type != "*fs.PathError" || ce.Function != "file.read" ||
		!strings.Contains(ce.Message, missing) || !strings.Contains(ce.Message, "no such file or directory") {
		t.Fatalf("read of a missing file: %#v", err)
	}
	_, err = builtins.FileStat.Call(ctx, c, builtins.StatRequest{Path: missing})
	if !errors.As(err, &ce) || ce.Type != "*fs.PathError" {
		t.Fatalf("stat of a missing file: %v", err)
	}
	_, err = builtins.FileWrite.Call(ctx, c, builtins.WriteRequest{Path: filepath.Join(missing, "x"), Atomic: true})
	if !errors.As(err, &ce) || !strings.Contains(ce.Message, missing) {
		t.Fatalf("atomic write into a missing directory: %v", err)
	}
	_, err = builtins.FileRead.Call(ctx, c, builtins.ReadRequest{Path: t.TempDir()})
	if !errors.As(err, &ce) || !strings.Contains(ce.Message, "is a directory") {
		t.Fatalf("read of a directory: %v", err)
	}
}

// A caller with only JSON-shaped data (maps, strings) reaches the typed
// function: msgpack decodes the map into the struct by its tags, a mode may
// be an octal string, and the result decodes into a map with the same keys.
func TestFileUntyped(t *testing.T) {
	_, c := child(t)
	ctx := ctxT(t)
	path := filepath.Join(t.TempDir(), "f")
	call := func(name string, args map[string]any) map[string]any {
		t.Helper()
		res, err := actors.Function[any, any](name).Call(ctx, c, args)
		if err != nil {
			t.Fatal(err)
		}
		m, ok := res.(map[string]any)
		if !ok {
			t.Fatalf("%s returned %T, want a map", name, res)
		}
		return m
	}
	w := call("file.write", map[string]any{"path": path, "data": "text\n", "mode": "0640", "atomic": true})
	if w["size"] != int8(5) && w["size"] != int64(5) && w["size"] != uint8(5) {
		t.Errorf("write = %#v", w)
	}
	st := call("file.stat", map[string]any{"path": path})
	if st["mode"] != "-rw-r-----" || st["name"] != "f" || st["is_dir"] != false {
		t.Errorf("stat = %#v", st)
	}
	rd := call("file.read", map[string]any{"path": path, "max_bytes": int64(100)})
	if string(rd["data"].([]byte)) != "text\n" {
		t.Errorf("read = %#v", rd)
	}
}
