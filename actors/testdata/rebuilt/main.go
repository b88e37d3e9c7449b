// Command rebuilt is a small mitogo program that TestSudoDeltaAfterRebuild
// builds in variants (a changed string, function body or dependency): it
// starts a context as the user named by its argument through sudo, calls
// answer there and prints the result.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/mitogo/mitogo/actors"
)

var answer = actors.Register("rebuilt.answer", func(ctx context.Context, _ struct{}) (string, error) {
	return "one", nil
})

func main() {
	actors.Main()
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r, err := actors.NewRouter(actors.WithLogger(log))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	defer r.Shutdown(ctx)
	c, err := r.Sudo(ctx, actors.User(os.Args[1]))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	s, err := answer.Call(ctx, c, struct{}{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(s)
}
