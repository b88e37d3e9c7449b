package actors_test

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/mitogo/mitogo/actors"
)

func ExampleFunc_Fan() {
	actors.RunWithRouter(func(r *actors.Router) error {
		ctx := context.Background()
		var targets []actors.ConnectTarget
		for _, name := range []string{"web1", "web2", "web3"} {
			targets = append(targets, actors.ConnectTarget{Name: name, Connect: func(ctx context.Context, r *actors.Router) (*actors.Context, error) {
				return r.Local(ctx, actors.Name(name))
			}})
		}
		conns := r.ConnectAll(ctx, targets, actors.Limit(10), actors.TargetTimeout(30*time.Second))
		if err := conns.Err(); err != nil {
			fmt.Println("not connected:", err)
		}
		var lines []string
		for res := range greet.Fan(ctx, conns.Contexts(), "fleet", actors.Limit(2), actors.TargetTimeout(10*time.Second)) {
			if res.Err != nil {
				lines = append(lines, fmt.Sprintf("%s failed: %v", res.Target, res.Err))
				continue
			}
			lines = append(lines, res.Value)
		}
		sort.Strings(lines) // they come as they finish
		for _, l := range lines {
			fmt.Println(l)
		}
		return nil
	}, actors.WithLogger(discard()))
	// Output:
	// hello fleet from web1
	// hello fleet from web2
	// hello fleet from web3
}

func ExampleSelect() {
	actors.RunWithRouter(func(r *actors.Router) error {
		ctx := context.Background()
		a, err := r.Local(ctx, actors.Name("a"))
		if err != nil {
			return err
		}
		b, err := r.Local(ctx, actors.Name("b"))
		if err != nil {
			return err
		}
		// Results of different types in one select: each comes with the
		// call it answers and the context it came from.
		hello := greet.Go(ctx, a, "select")
		size := length.Go(ctx, b, []byte("four"))
		s := actors.NewSelect(hello, size)
		defer s.Close()
		waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		var lines []string
		for res, err := range s.All(waitCtx) {
			if err != nil { // a *TimeoutError naming the calls still out
				return err
			}
			switch res.Source {
			case hello:
				msg, err := actors.As[string](res)
				lines = append(lines, fmt.Sprintf("%s: %q %v", res.Target, msg, err))
			case size:
				n, err := actors.As[int](res)
				lines = append(lines, fmt.Sprintf("%s: %d %v", res.Target, n, err))
			}
		}
		sort.Strings(lines)
		for _, l := range lines {
			fmt.Println(l)
		}
		return nil
	}, actors.WithLogger(discard()))
	// Output:
	// a: "hello select from a" <nil>
	// b: 4 <nil>
}
