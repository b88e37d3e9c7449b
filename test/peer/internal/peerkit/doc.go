// Package peerkit holds what the Go peer benchmark programs (test/peer/floor
// and test/peer/mitogo, with its --ssh mode) share: the --quick, --only and
// -v flags and the checking of --only, progress logging, the statistics
// (median, rounding) and the result keys built from them, the timed echo and
// 64 MiB loops, starting n things at once, RSS from /proc and printing the
// one JSON object on stdout.
package peerkit
