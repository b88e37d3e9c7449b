package actors

import "context"

type callInfoKey struct{}

type callInfo struct {
	r      *Router
	caller uint32
	ends   []*stream // stream ends decoded from its arguments (stream.go); the call's goroutine only
}

func withCall(ctx context.Context, r *Router, caller uint32) (context.Context, *callInfo) {
	ci := &callInfo{r: r, caller: caller}
	return context.WithValue(ctx, callInfoKey{}, ci), ci
}

// RouterFrom returns the router of the context running the function that
// was given ctx (Mitogen's takes_router), so the function can start
// contexts and call others. It returns nil outside a called function.
func RouterFrom(ctx context.Context) *Router {
	if ci, ok := ctx.Value(callInfoKey{}).(*callInfo); ok {
		return ci.r
	}
	return nil
}

// CurrentContext returns a handle on the context running the function that
// was given ctx (Mitogen's takes_econtext), or nil outside a called function.
func CurrentContext(ctx context.Context) *Context {
	if r := RouterFrom(ctx); r != nil {
		return r.Self()
	}
	return nil
}

// Caller returns a handle on the context that called the function that
// was given ctx, or nil outside a called function. Calling back into it is
// subject to the policy: upward calls must be allowed with AllowUpward.
// Its Done closes when this context learns that the caller is gone (see
// Router.Context), so a long call can stop working for a dead caller.
func Caller(ctx context.Context) *Context {
	if ci, ok := ctx.Value(callInfoKey{}).(*callInfo); ok {
		return ci.r.Context(int(ci.caller))
	}
	return nil
}
