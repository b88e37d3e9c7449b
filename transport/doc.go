// Package transport moves frames between two processes of a mitogo tree.
//
// A Stream wraps one io.ReadWriteCloser (a socketpair, a pipe pair, an SSH
// session) and gives it a frame reader and a combining writer: whoever
// writes while another write is in progress queues its frame and returns,
// and the goroutine already writing sends everything queued in one writev.
// So a frame crosses no goroutine hand-off on its way out, and a busy stream
// batches naturally.
//
// The connection methods (StartLocal; StartSSH, x/crypto's client;
// StartCommand and StartPty for a tool whose far end is a shell: sudo, su,
// doas, the OpenSSH client) start a child process and return its stream
// together with the handles needed to reap it. The package knows nothing of routing or actors: package actors
// owns each stream's reader goroutine and decides what a frame means.
package transport
