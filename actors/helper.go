package actors

import (
	"os"
	"sync"
)

// helpers are other roles a mitogo program can be started in, by the
// environment variable that selects each: fakessh's ssh stand-in is this
// program, run by rsync or scp with MITOGO_FAKESSH set. A registry, filled
// at package init.
var helpers = struct {
	sync.Mutex
	byEnv map[string]func() (int, bool)
}{byEnv: map[string]func() (int, bool){}}

// RegisterHelper makes Main run fn when the environment variable env is
// set, and exit with its status unless fn declines (ok false: the variable
// was inherited by a program it was not meant for). Packages call it from
// init (fakessh does).
func RegisterHelper(env string, fn func() (code int, ok bool)) {
	helpers.Lock()
	defer helpers.Unlock()
	helpers.byEnv[env] = fn
}

// runHelper runs the helper the environment selects, if any.
func runHelper() (int, bool) {
	helpers.Lock()
	var fn func() (int, bool)
	for env, f := range helpers.byEnv {
		if os.Getenv(env) != "" {
			fn = f
			break
		}
	}
	helpers.Unlock()
	if fn == nil {
		return 0, false
	}
	return fn()
}
