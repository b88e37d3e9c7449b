package cluster_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/mitogo/mitogo/actors"
	"go.uber.org/goleak"
)

// The test binary is also the hosts' child context and, with envRole set,
// a controller process (see controllerMain).
func TestMain(m *testing.M) {
	actors.Main()
	if os.Getenv(envRole) == "controller" {
		os.Exit(controllerMain())
	}
	if os.Getenv("GORACE") == "" {
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1")); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
