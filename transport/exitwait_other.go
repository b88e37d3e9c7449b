//go:build !linux

package transport

// awaitExit returns at once where pidfds do not exist: exec.Cmd.Wait then
// waits as it does.
func awaitExit(int) {}
