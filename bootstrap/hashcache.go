package bootstrap

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// The hash of what is sent of an executable (its stripped image) is kept
// on the master's disk, so that a run of a program does not read and hash
// its 17 MB executable to connect somewhere. An entry is keyed by the
// file's path, device, inode, size and modification time: a rebuild (a new
// inode or mtime) misses. The cache is one small file in the user's cache
// directory (hashCacheFile), at most hashCacheEntries lines, the most
// recent first; one that is missing, unreadable or malformed is just
// recomputed and rewritten.

// hashCacheHeader is the cache file's first line. Its last word names
// stripImage's output: change it whenever that output changes, so that
// hashes of the old images are not used for the new.
const hashCacheHeader = "mitogo executable hashes v1 strip1"

// hashCacheEntries bounds the cache (test binaries get a new path per
// build).
const hashCacheEntries = 64

// hashCacheFile is where the cache lives: ~/.cache/mitogo/exe-hashes (the
// same directory as the binary cache of a far side; that cache's files are
// named by a hash, this one is not).
func hashCacheFile() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "mitogo", "exe-hashes"), nil
}

// fileKey identifies the contents of a file by where it is and what stat
// says; "" when stat's details are not available.
func fileKey(path string, st os.FileInfo) string {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%d %d %d %d %s", uint64(sys.Dev), uint64(sys.Ino), st.Size(), st.ModTime().UnixNano(), strconv.Quote(abs))
}

// hashEntry is one cached hash: of the image sent, and its size.
type hashEntry struct {
	hash string
	size int64
}

// readHashCache returns the cache's lines as key → entry, in order; nil
// when there is no usable cache.
func readHashCache() (keys []string, entries map[string]hashEntry) {
	name, err := hashCacheFile()
	if err != nil {
		return nil, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() || sc.Text() != hashCacheHeader {
		return nil, nil
	}
	entries = map[string]hashEntry{}
	for sc.Scan() && len(keys) < hashCacheEntries {
		hash, rest, ok1 := strings.Cut(sc.Text(), " ")
		size, key, ok2 := strings.Cut(rest, " ")
		n, err := strconv.ParseInt(size, 10, 64)
		if !ok1 || !ok2 || err != nil || n < 0 || !isHash(hash) {
			continue
		}
		if _, dup := entries[key]; !dup {
			keys = append(keys, key)
			entries[key] = hashEntry{hash: hash, size: n}
		}
	}
	return keys, entries
}

// isHash reports whether s is a hex sha256.
func isHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// lookupHash returns the cached entry for key.
func lookupHash(key string) (hashEntry, bool) {
	if key == "" {
		return hashEntry{}, false
	}
	_, entries := readHashCache()
	e, ok := entries[key]
	return e, ok
}

// storeHash puts key's entry first in the cache, dropping the oldest
// beyond hashCacheEntries. Failing to write only costs a hash next time.
// Two masters storing at once may each lose the other's entry, never
// write a torn file: each writes its own temporary file and renames it.
func storeHash(key string, e hashEntry) {
	if key == "" {
		return
	}
	name, err := hashCacheFile()
	if err != nil {
		return
	}
	keys, entries := readHashCache()
	var b strings.Builder
	b.WriteString(hashCacheHeader + "\n")
	fmt.Fprintf(&b, "%s %d %s\n", e.hash, e.size, key)
	n := 1
	for _, k := range keys {
		if k == key || n >= hashCacheEntries {
			continue
		}
		fmt.Fprintf(&b, "%s %d %s\n", entries[k].hash, entries[k].size, k)
		n++
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), "exe-hashes.*.tmp")
	if err != nil {
		return
	}
	_, err = tmp.WriteString(b.String())
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), name)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
}
