package files

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// lookupParents asks up to parentLookups contexts at once, each once,
// level by level up to the root, and keeps going past one that fails.
// Every question waits until parentLookups of them are in flight: asked
// one at a time, the first would wait for the deadline.
func TestLookupParentsConcurrently(t *testing.T) {
	const root, vias, leaves = 1, 2, 22
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // only against a hang
	defer cancel()
	errGone := errors.New("gone")
	var mu sync.Mutex
	inFlight, most := 0, 0
	asked := map[int]int{}
	full := make(chan struct{})
	var fill sync.Once // parentLookups may be in flight again later
	ask := func(ctx context.Context, id int) (int, error) {
		mu.Lock()
		asked[id]++
		inFlight++
		most = max(most, inFlight)
		if inFlight == parentLookups {
			fill.Do(func() { close(full) })
		}
		mu.Unlock()
		defer func() {
			mu.Lock()
			inFlight--
			mu.Unlock()
		}()
		select {
		case <-full:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		switch {
		case id == 107:
			return 0, errGone
		case id >= 100:
			return 10 + id%vias, nil // leaves 100.. below vias 10, 11
		default:
			return root, nil
		}
	}
	var ids []int
	for i := range leaves {
		ids = append(ids, 100+i)
	}
	ids = append(ids, 10, 100) // a via as a target too, and a target twice
	parent, failed := lookupParents(ctx, root, ids, ask)
	if most > parentLookups {
		t.Errorf("%d questions in flight at once, want at most %d", most, parentLookups)
	}
	for id, n := range asked {
		if n != 1 {
			t.Errorf("context %d asked %d times, want once", id, n)
		}
	}
	if len(asked) != leaves+vias {
		t.Errorf("asked %d contexts, want %d: %v", len(asked), leaves+vias, asked)
	}
	if len(failed) != 1 || !errors.Is(failed[107], errGone) {
		t.Errorf("failed: %v, want only 107 (gone)", failed)
	}
	for i := range leaves {
		id := 100 + i
		if id == 107 {
			continue
		}
		if p := parent[id]; p != 10+id%vias || parent[p] != root {
			t.Errorf("context %d: parent %d, whose parent is %d", id, p, parent[p])
		}
	}
}
