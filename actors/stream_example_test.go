package actors_test

import (
	"context"
	"fmt"

	"github.com/mitogo/mitogo/actors"
)

type stepsArgs struct {
	N        int
	Progress *actors.Sender[string] // the function's end of the stream
}

// steps reports each step on its stream as it goes, and returns how many
// it did.
var steps = actors.Register("example.steps", func(ctx context.Context, a stepsArgs) (int, error) {
	for i := 1; i <= a.N; i++ {
		if err := a.Progress.Send(ctx, fmt.Sprintf("step %d of %d", i, a.N)); err != nil {
			return 0, err // the caller went away
		}
	}
	return a.N, nil // returning nil closes the stream
})

func ExampleNewStream() {
	actors.RunWithRouter(func(r *actors.Router) error {
		ctx := context.Background()
		c, err := r.Local(ctx)
		if err != nil {
			return err
		}
		progress, lines := actors.NewStream[string](r)
		defer lines.Close()
		p := steps.Go(ctx, c, stepsArgs{N: 3, Progress: progress})
		for line, err := range lines.All(ctx) {
			if err != nil {
				return err // a *ChannelError: the far side is gone, and why
			}
			fmt.Println(line)
		}
		n, err := p.Wait()
		fmt.Println(n, err)
		return nil
	}, actors.WithLogger(discard()))
	// Output:
	// step 1 of 3
	// step 2 of 3
	// step 3 of 3
	// 3 <nil>
}
