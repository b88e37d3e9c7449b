package actors_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/mitogo/mitogo/actors"
)

// greet is registered at package init, so the child (this same binary)
// knows it too.
var greet = actors.Register("example.greet", func(ctx context.Context, who string) (string, error) {
	return fmt.Sprintf("hello %s from %s", who, actors.RouterFrom(ctx).Name()), nil
})

func Example() {
	// In a real program, actors.Main() is the first line of main; here
	// TestMain calls it.
	err := actors.RunWithRouter(func(r *actors.Router) error {
		ctx := context.Background()
		c1, err := r.Local(ctx)
		if err != nil {
			return err
		}
		c2, err := r.Local(ctx, actors.Via(c1), actors.Name("worker"))
		if err != nil {
			return err
		}
		msg, err := greet.Call(ctx, c2, "master")
		fmt.Println(msg)
		return err
	}, actors.WithLogger(discard()))
	fmt.Println(err)
	// Output:
	// hello master from local.1/worker
	// <nil>
}

func ExampleCallError() {
	actors.RunWithRouter(func(r *actors.Router) error {
		c, err := r.Local(context.Background())
		if err != nil {
			return err
		}
		_, err = actors.Function[string, string]("no.such").Call(context.Background(), c, "x")
		var ce *actors.CallError
		if errors.As(err, &ce) {
			fmt.Println(ce.Context, ce.Code, errors.Is(err, actors.ErrUnknownFunction))
		}
		return nil
	}, actors.WithLogger(discard()))
	// Output: local.1 unknown true
}

func ExampleLogToFile() {
	path := filepath.Join(os.TempDir(), fmt.Sprintf("mitogo-example-%d.log", os.Getpid()))
	defer os.Remove(path)
	opt, closeLog, err := actors.LogToFile(path, slog.LevelInfo)
	if err != nil {
		fmt.Println(err)
		return
	}
	actors.RunWithRouter(func(r *actors.Router) error {
		c, err := r.Local(context.Background())
		if err != nil {
			return err
		}
		_, err = printer.Call(context.Background(), c, "written-by-child")
		return err
	}, opt)
	closeLog()
	data, _ := os.ReadFile(path)
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, "msg=written-by-child") {
			fmt.Println(strings.Contains(line, "context=local.1"))
		}
	}
	// Output: true
}
