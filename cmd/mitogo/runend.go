package main

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Phases of a target's work, for the message when the run ends in one.
const (
	phaseBefore     = "before it started"
	phaseConnecting = "while connecting"
	phaseRunning    = "while running"
)

// runEndError says why a target's work ended with the run rather than by
// itself: --timeout passed, or an interrupt; and what it was doing then.
type runEndError struct {
	timeout time.Duration // --timeout, when it passed; 0 for an interrupt
	signal  error         // errInterrupted or errTerminated, for an interrupt
	phase   string        // phaseBefore, phaseConnecting or phaseRunning
	err     error         // what the work returned then, nil before it started
}

func (e *runEndError) Error() string {
	what := "ended by SIGINT"
	if errors.Is(e.signal, errTerminated) {
		what = "ended by SIGTERM"
	}
	if e.timeout > 0 {
		what = fmt.Sprintf("--timeout %v passed", e.timeout)
	}
	return what + " (" + e.phase + ")"
}

// Unwrap returns what the work returned.
func (e *runEndError) Unwrap() error { return e.err }

// endedByRun marks res when the run ended (ctx on an interrupt, runCtx
// also at --timeout, which is timeout) during phase, err being what the
// work returned; it reports whether it did. The deadline counts as passed
// once its time has come, even before runCtx's timer ends it: a connection
// given that deadline as its I/O deadline fails at the same moment.
func (res *outcome) endedByRun(ctx, runCtx context.Context, timeout time.Duration, phase string, err error) bool {
	deadline, ok := runCtx.Deadline()
	switch {
	case ctx.Err() != nil:
		res.state, res.exit = stateInterrupted, interruptStatus(ctx)
		res.err = &runEndError{signal: context.Cause(ctx), phase: phase, err: err}
	case runCtx.Err() != nil, ok && !time.Now().Before(deadline):
		res.state, res.exit, res.err = stateTimedOut, exitTimeout, &runEndError{timeout: timeout, phase: phase, err: err}
	default:
		return false
	}
	return true
}
