// Package bootstrap turns a process into a child context and brings the
// child's binary to the far side.
//
// On the child's side, Detect tells that the process was started as a
// child context (the MITOGO_CHILD environment variable) and OpenStream
// opens its stream: an inherited socket descriptor for a local child, or
// standard input and output as stage 1 leaves them. SetProcessTitle names
// the process in ps once it knows its context.
//
// On the parent's side, Stage1 is the POSIX sh program a method that ends
// in a shell (ssh, sudo, su, doas) runs there: it reports the far side's
// platform, receives the binary into a cache keyed by its sha256 when it is
// missing, and execs it on the same stdin and stdout. Run speaks the
// parent's side of that exchange, sending the Binary for the platform that
// stage 1 reports.
package bootstrap
