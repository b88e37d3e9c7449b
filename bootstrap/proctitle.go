package bootstrap

import "errors"

// ErrNoArgvArea is returned by SetProcessTitle when the process's original
// argument memory cannot be found (os.Args was replaced, or /proc does not
// say where the kernel reads the command line from).
var ErrNoArgvArea = errors.New("bootstrap: the original argument area is not found")
