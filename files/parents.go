package files

import (
	"context"
	"sync"
)

// parentLookups bounds the parent questions planTree has in flight: one
// per target at once would start hundreds of calls for a large fleet.
const parentLookups = 16

// lookupParents asks every context of ids, then every parent they name,
// and so on up to root, for its parent: each context once, at most
// parentLookups at once. It returns the parents learnt and, for the
// contexts that could not be asked, why.
func lookupParents(ctx context.Context, root int, ids []int, ask func(ctx context.Context, id int) (int, error)) (map[int]int, map[int]error) {
	parent := map[int]int{}
	failed := map[int]error{}
	seen := map[int]bool{root: true}
	var level []int
	add := func(id int) {
		if !seen[id] {
			seen[id] = true
			level = append(level, id)
		}
	}
	for _, id := range ids {
		add(id)
	}
	sem := make(chan struct{}, parentLookups)
	for len(level) > 0 {
		asked := level
		level = nil
		ps := make([]int, len(asked))
		errs := make([]error, len(asked))
		var wg sync.WaitGroup
		for i, id := range asked {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				ps[i], errs[i] = ask(ctx, id)
			}()
		}
		wg.Wait()
		for i, id := range asked {
			if errs[i] != nil {
				failed[id] = errs[i]
				continue
			}
			parent[id] = ps[i]
			add(ps[i])
		}
	}
	return parent, failed
}
