// Package actors is mitogo's runtime and public API: routers, contexts,
// registered functions, channels, supervision and the child entry point.
//
// A program that uses mitogo calls Main first in its main function; when
// the process was started as a child context, Main serves its parent and
// never returns. The master then builds a Router, starts contexts (Local,
// and the remote methods) and calls registered functions in them:
//
//	var Hostname = actors.Register("example.hostname",
//		func(ctx context.Context, _ struct{}) (string, error) { return os.Hostname() })
//
//	func main() {
//		actors.Main()
//		r, _ := actors.NewRouter()
//		defer r.Shutdown(context.Background())
//		c, _ := r.Local(context.Background())
//		name, err := Hostname.Call(context.Background(), c, struct{}{})
//		...
//	}
//
// Each process runs one protoactor ActorSystem whose address is "ctx:<id>";
// a PID with another context's address reaches that context, so Send,
// Request, RequestFuture, Stop, Watch and Unwatch work across the tree (a
// watcher gets Terminated with AddressTerminated when the route to a
// watched actor is lost). The router actor owns the
// routing table and publishes it as an immutable snapshot that stream
// readers use to forward frames without a mailbox hop; every Context
// started here is watched by a Context actor under a supervisor whose
// strategy (Stop, Restart) decides what a child's death leads to.
//
// A program that forgets to call Main is refused: its NewRouter, in a
// process started as a child, answers the parent with a refusal and
// returns an error matching ErrMainNotCalled, and the parent's connect
// fails at once with a *StreamError matching it, rather than each child
// starting the next without end.
//
// Each child leads a session of its own; when it stops, the processes its
// functions started and left running end with it (see Router.Shutdown).
//
// Errors about remote contexts are *CallError, *ChannelError, *StreamError
// and *TimeoutError; all match ErrMitogo with errors.Is and name the
// context by its full name.
package actors
