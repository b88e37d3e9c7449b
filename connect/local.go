package connect

import (
	"context"

	"github.com/mitogo/mitogo/transport"
)

func init() {
	register(&Method{Name: Local, Options: OptExecutable,
		hints: map[Option]string{
			OptUser:     "use Sudo, Su or Doas to change account",
			OptPassword: "a local child needs none",
		},
		start: func(_ context.Context, s Spec, e Env) (*transport.Child, error) {
			return transport.StartLocal(transport.LocalSpec{Path: s.Path, Args: s.Args, Direct: e.Direct})
		}})
}
