package main

import (
	"bufio"
	"bytes"
	"os"
	"slices"

	"golang.org/x/crypto/ssh"
)

// addedKey is a host key the accept-new policy recorded during a run.
type addedKey struct {
	target                           string // the target that met it ("?" when none names that host)
	host, keyType, fingerprint, file string
}

// knownHostsSnapshot holds the lines of the known_hosts files accept-new
// may add to, as they were before the run.
type knownHostsSnapshot map[string]map[string]bool

// snapshotKnownHosts reads the known_hosts files of the targets whose
// first hop is ssh with the accept-new policy.
func snapshotKnownHosts(plans []*planned) knownHostsSnapshot {
	snap := knownHostsSnapshot{}
	for _, p := range plans {
		if p.acceptNew == "" || snap[p.acceptNew] != nil {
			continue
		}
		lines := map[string]bool{}
		for _, l := range readLines(p.acceptNew) {
			lines[l] = true
		}
		snap[p.acceptNew] = lines
	}
	return snap
}

// added returns the keys recorded since the snapshot, each with the target
// whose host it is.
func (snap knownHostsSnapshot) added(plans []*planned) []addedKey {
	var out []addedKey
	files := make([]string, 0, len(snap))
	for f := range snap {
		files = append(files, f)
	}
	slices.Sort(files)
	for _, file := range files {
		for _, l := range readLines(file) {
			if snap[file][l] {
				continue
			}
			_, hosts, key, _, _, err := ssh.ParseKnownHosts([]byte(l))
			if err != nil || len(hosts) == 0 {
				continue
			}
			k := addedKey{target: "?", host: hosts[0], keyType: key.Type(), fingerprint: ssh.FingerprintSHA256(key), file: file}
			for _, p := range plans {
				if p.acceptNew == file && slices.Contains(hosts, p.hostKeyName) {
					k.target = p.t.name
					break
				}
			}
			out = append(out, k)
		}
	}
	return out
}

// readLines returns the non-empty lines of a file; none when it cannot be
// read (it may not exist yet).
func readLines(path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if l := sc.Text(); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}
