package actors_test

import (
	"context"
	"errors"
	"testing"
)

// A channel made with a window of 4 lets its sender have 4 items in
// flight, no more, and credit comes back as the receiver takes them.
func TestChannelWindow(t *testing.T) {
	r := newRouter(t)
	a, b := r.NewChannelWindow(4), r.NewChannelWindow(4)
	a.Connect(b.Addr())
	b.Connect(a.Addr())
	defer a.Release()
	defer b.Release()
	for i := range 4 {
		if err := a.Send(ctxT(t), i); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.Send(cancelled, 4); !errors.Is(err, context.Canceled) {
		t.Fatalf("a fifth item in flight: %v, want it to wait for credit", err)
	}
	var got []int
	for range 2 {
		var v int
		if err := b.Recv(ctxT(t), &v); err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	for i := 4; i < 6; i++ {
		if err := a.Send(ctxT(t), i); err != nil {
			t.Fatalf("send %d after the receiver took two: %v", i, err)
		}
	}
	for range 4 {
		var v int
		if err := b.Recv(ctxT(t), &v); err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("received %v, want 0 to 5 in order", got)
		}
	}
}
