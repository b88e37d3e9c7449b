package actors_test

import (
	"context"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/messages"
)

// Ping and Pong are actor messages that cross contexts.
type Ping struct{ Text string }
type Pong struct {
	Text string
	From int
}

func init() {
	messages.Register[*Ping]("test.Ping")
	messages.Register[*Pong]("test.Pong")
}

// pongActor answers every Ping with a Pong naming its context.
type pongActor struct{ ctxID int }

func (a *pongActor) Receive(c actor.Context) {
	if p, ok := c.Message().(*Ping); ok {
		c.Respond(&Pong{Text: p.Text, From: a.ctxID})
	}
}

var spawnPong = actors.Register("test.spawnPong", func(ctx context.Context, name string) (string, error) {
	r := actors.RouterFrom(ctx)
	pid, err := r.System().Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &pongActor{ctxID: r.ID()} }), name)
	if err != nil {
		return "", err
	}
	return pid.String(), nil
})

func TestRequestFutureAcrossContexts(t *testing.T) {
	r := newRouter(t)
	c1 := local(t, r)
	c2 := local(t, r, actors.Via(c1))
	for _, c := range []*actors.Context{c1, c2} {
		if _, err := spawnPong.Call(ctxT(t), c, "pong"); err != nil {
			t.Fatal(err)
		}
		res, err := r.System().Root.RequestFuture(c.PID("pong"), &Ping{Text: "hi " + c.Name()}, 10*time.Second).Result()
		if err != nil {
			t.Fatalf("%s: %v", c.Name(), err)
		}
		pong, ok := res.(*Pong)
		if !ok || pong.Text != "hi "+c.Name() || pong.From != c.ID() {
			t.Fatalf("%s: reply %#v", c.Name(), res)
		}
	}
	// An actor that does not exist answers with a dead letter, not silence.
	res, err := r.System().Root.RequestFuture(c1.PID("nobody"), &Ping{Text: "x"}, 10*time.Second).Result()
	if err == nil {
		t.Fatalf("request to a missing actor: %#v", res)
	}
	if err == actor.ErrTimeout {
		t.Fatal("request to a missing actor timed out instead of failing at once")
	}
}
