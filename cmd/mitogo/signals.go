package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// The causes of the command's context's end, by signal.
var (
	errInterrupted = errors.New("interrupted")          // SIGINT, Ctrl-C
	errTerminated  = errors.New("terminated (SIGTERM)") // SIGTERM
)

// Exit statuses after a signal ended the command, as a shell gives them:
// 128 + the signal's number.
const (
	exitInterrupted = 128 + int(syscall.SIGINT)  // 130
	exitTerminated  = 128 + int(syscall.SIGTERM) // 143
)

// notifySignals returns a context that the first SIGINT or SIGTERM ends,
// with errInterrupted or errTerminated as its cause, and a func that stops
// listening. After the first, the signals are no longer caught: a second
// one kills mitogo at once.
func notifySignals() (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case s := <-sigs:
			signal.Stop(sigs)
			cause := errInterrupted
			if s == syscall.SIGTERM {
				cause = errTerminated
			}
			cancel(cause)
		case <-done:
		}
	})
	return ctx, func() {
		close(done)
		wg.Wait()
		signal.Stop(sigs)
		cancel(nil)
	}
}

// interruptStatus is the exit status once ctx (from notifySignals, or
// made from it) ended: 143 for SIGTERM, else 130.
func interruptStatus(ctx context.Context) int {
	if errors.Is(context.Cause(ctx), errTerminated) {
		return exitTerminated
	}
	return exitInterrupted
}
