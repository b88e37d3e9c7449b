package actors_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/mitogo/mitogo/actors"
)

// inventory is a service's state: a count per item, changed by one
// method call at a time.
type inventory struct{ items map[string]int }

var inventorySvc = actors.RegisterService("example.inventory", func(r *actors.Router) (*inventory, error) {
	return &inventory{items: map[string]int{}}, nil
})

var (
	// add is serialized (the default): it changes the map without a lock.
	inventoryAdd = actors.Method(inventorySvc, "add", func(ctx context.Context, inv *inventory, item string) (int, error) {
		inv.items[item]++
		return inv.items[item], nil
	})
	// count may be called by any context, the children of the one it
	// runs in included.
	inventoryCount = actors.Method(inventorySvc, "count", func(ctx context.Context, inv *inventory, item string) (int, error) {
		return inv.items[item], nil
	}, actors.WithPolicy(actors.Anyone()))
	// inParent runs in a child: it calls the service method named in its
	// parent and says how that went.
	inParent = actors.Register("example.inParent", func(ctx context.Context, method string) (string, error) {
		n, err := actors.Function[string, int](method).Call(ctx, actors.RouterFrom(ctx).Parent(), "apple")
		if errors.Is(err, actors.ErrRefused) {
			return "refused", nil
		}
		return fmt.Sprint(n), err
	})
)

// A service in the master: the master's own call activates it, and a
// child may then call the method whose policy lets anyone call it, but
// not the one that keeps the default, ParentsOnly.
func ExampleRegisterService() {
	actors.RunWithRouter(func(r *actors.Router) error {
		ctx := context.Background()
		for range 2 {
			if _, err := inventoryAdd.Call(ctx, r.Self(), "apple"); err != nil {
				return err
			}
		}
		c, err := r.Local(ctx)
		if err != nil {
			return err
		}
		for _, m := range []actors.Func[string, int]{inventoryCount, inventoryAdd} {
			got, err := inParent.Call(ctx, c, m.Name())
			fmt.Println(m.Name(), got, err)
		}
		return nil
	}, actors.WithLogger(discard()))
	// Output:
	// service:example.inventory/count 2 <nil>
	// service:example.inventory/add refused <nil>
}
