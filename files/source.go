package files

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// walk lists the tree at src, parents before their contents, and the
// total size of its regular files. The root is followed when it is a
// symbolic link; links inside are kept as links. Devices, FIFOs and
// sockets are left out.
func walk(src string, recursive bool) ([]entry, int64, error) {
	names := nameCache{users: map[uint32]string{}, groups: map[uint32]string{}}
	fi, err := os.Stat(src)
	if err != nil {
		return nil, 0, err
	}
	if fi.IsDir() && !recursive {
		return nil, 0, fmt.Errorf("%s: %w", src, ErrIsDirectory)
	}
	root, ok := names.entry("", fi, src)
	if !ok {
		return nil, 0, fmt.Errorf("%s: not a regular file, directory or symbolic link", src)
	}
	entries := []entry{root}
	total := root.Size
	if !fi.IsDir() {
		return entries, total, nil
	}
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == src {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		e, ok := names.entry(filepath.ToSlash(rel), fi, p)
		if ok {
			entries = append(entries, e)
			total += e.Size
		}
		return nil
	})
	return entries, total, err
}

// nameCache turns ids into names, looking each up once.
type nameCache struct {
	users, groups map[uint32]string
}

func (n nameCache) entry(rel string, fi fs.FileInfo, path string) (entry, bool) {
	e := entry{Path: rel, Mode: modeBits(fi.Mode()), MTime: fi.ModTime().UnixNano()}
	switch {
	case fi.Mode().IsRegular():
		e.Type, e.Size = typeFile, fi.Size()
	case fi.IsDir():
		e.Type = typeDir
	case fi.Mode()&fs.ModeSymlink != 0:
		link, err := os.Readlink(path)
		if err != nil {
			return e, false
		}
		e.Type, e.Link = typeSymlink, link
	default:
		return e, false
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		e.UID, e.GID = st.Uid, st.Gid
		e.User, e.Group = n.user(st.Uid), n.group(st.Gid)
	}
	return e, true
}

func (n nameCache) user(id uint32) string {
	if s, ok := n.users[id]; ok {
		return s
	}
	u, err := user.LookupId(strconv.FormatUint(uint64(id), 10))
	if err == nil {
		n.users[id] = u.Username
	} else {
		n.users[id] = ""
	}
	return n.users[id]
}

func (n nameCache) group(id uint32) string {
	if s, ok := n.groups[id]; ok {
		return s
	}
	g, err := user.LookupGroupId(strconv.FormatUint(uint64(id), 10))
	if err == nil {
		n.groups[id] = g.Name
	} else {
		n.groups[id] = ""
	}
	return n.groups[id]
}

// modeBits is m's permission bits with setuid, setgid and sticky in their
// Unix places.
func modeBits(m fs.FileMode) uint32 {
	b := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		b |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		b |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		b |= 0o1000
	}
	return b
}

// fileMode is the inverse of modeBits.
func fileMode(b uint32) fs.FileMode {
	m := fs.FileMode(b & 0o777)
	if b&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if b&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if b&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}
