//go:build !linux

package bootstrap

// SetProcessTitle does nothing on this system: ps shows the process by the
// command line it was started with.
func SetProcessTitle(name, title string) error { return nil }
