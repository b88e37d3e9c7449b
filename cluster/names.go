package cluster

import (
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
)

var plainToken = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// token turns a name into one NATS subject token and KV key: as it is
// when it is made of letters, digits, "_" and "-", else "_x" and its hex,
// so that any inventory name has a key and a subject of its own.
func token(name string) string {
	if plainToken.MatchString(name) && !strings.HasPrefix(name, "_x") {
		return name
	}
	return "_x" + hex.EncodeToString([]byte(name))
}

// untoken is token's inverse.
func untoken(t string) string {
	if h, ok := strings.CutPrefix(t, "_x"); ok {
		if b, err := hex.DecodeString(h); err == nil {
			return string(b)
		}
	}
	return t
}

// checkClusterName refuses a cluster name that would not make plain
// bucket names and subjects.
func checkClusterName(name string) error {
	if !plainToken.MatchString(name) {
		return fmt.Errorf("cluster name %q: want letters, digits, '_' and '-' only: %w", name, ErrConfig)
	}
	return nil
}

// leaseBucket is the JetStream KV bucket of a cluster's host leases: key
// token(host), value a lease.
func leaseBucket(cluster string) string { return "mitogo_" + cluster + "_hosts" }

// memberBucket is the KV bucket of a cluster's live members: key
// token(member ID), value a Member.
func memberBucket(cluster string) string { return "mitogo_" + cluster + "_members" }

// hostSubject is where calls to a host are sent; only its owner
// subscribes.
func hostSubject(cluster, host string) string {
	return "mitogo." + cluster + ".host." + token(host)
}
