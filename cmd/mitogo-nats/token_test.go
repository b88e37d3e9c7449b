package main

import (
	"path/filepath"
	"sync"
	"testing"
)

// Servers started together (the README's three mitogo-nats) share one
// token file: all of them end up with the same token, none fails, none
// reads an empty one.
func TestTokenFileShared(t *testing.T) {
	for round := range 20 {
		path := filepath.Join(t.TempDir(), "mitogo", "nats-token")
		const n = 8
		toks := make([]string, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { toks[i], errs[i] = loadOrMakeToken(path) })
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil || toks[i] == "" || toks[i] != toks[0] {
				t.Fatalf("round %d: server %d got token %q, error %v; server 0 got %q", round, i, toks[i], errs[i], toks[0])
			}
		}
	}
}
