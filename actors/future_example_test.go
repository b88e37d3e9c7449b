package actors_test

import (
	"context"
	"fmt"
	"sort"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/mitogo/mitogo/actors"
)

// An actor calls a function in another context without blocking its
// Receive: the result arrives later as a *Result message.
func ExampleFunc_CallTo() {
	actors.RunWithRouter(func(r *actors.Router) error {
		c, err := r.Local(context.Background())
		if err != nil {
			return err
		}
		done := make(chan struct{})
		pid := r.System().Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
			switch m := ctx.Message().(type) {
			case string:
				greet.CallTo(context.Background(), ctx, c, m)
			case *actors.Result[string]:
				fmt.Println(m.Value, m.Err)
				close(done)
			}
		}))
		r.System().Root.Send(pid, "an actor")
		<-done
		return r.System().Root.StopFuture(pid).Wait()
	}, actors.WithLogger(discard()))
	// Output: hello an actor from local.1 <nil>
}

// An actor fans a call out to many contexts and takes the results in
// its Receive, never more than Limit of them outstanding at once.
func ExampleFunc_FanTo() {
	actors.RunWithRouter(func(r *actors.Router) error {
		var targets []*actors.Context
		for range 3 {
			c, err := r.Local(context.Background())
			if err != nil {
				return err
			}
			targets = append(targets, c)
		}
		done := make(chan []string)
		var got []string
		pid := r.System().Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
			switch m := ctx.Message().(type) {
			case string:
				greet.FanTo(context.Background(), ctx, targets, m, actors.Limit(2))
			case *actors.Result[string]:
				got = append(got, m.Value) // in the actor: no lock needed
				if len(got) == len(targets) {
					done <- got
				}
			}
		}))
		r.System().Root.Send(pid, "fan")
		all := <-done
		sort.Strings(all)
		for _, s := range all {
			fmt.Println(s)
		}
		return r.System().Root.StopFuture(pid).Wait()
	}, actors.WithLogger(discard()))
	// Output:
	// hello fan from local.1
	// hello fan from local.2
	// hello fan from local.3
}

// A future for ReenterAfter: the continuation runs in the actor when the
// call has ended.
func ExampleFunc_Future() {
	actors.RunWithRouter(func(r *actors.Router) error {
		c, err := r.Local(context.Background())
		if err != nil {
			return err
		}
		done := make(chan struct{})
		pid := r.System().Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
			if who, ok := ctx.Message().(string); ok {
				ctx.ReenterAfter(greet.Future(context.Background(), c, who), func(res any, _ error) {
					fmt.Println(res.(*actors.Result[string]).Value)
					close(done)
				})
			}
		}))
		r.System().Root.Send(pid, "a continuation")
		<-done
		return r.System().Root.StopFuture(pid).Wait()
	}, actors.WithLogger(discard()))
	// Output: hello a continuation from local.1
}
