// Package connect knows how each connection method starts a child context's
// process and how to read its failure: local (a copy of this program on a
// socketpair), sudo, su and doas (another account, through a shell that
// runs stage 1), ssh (the native client, golang.org/x/crypto/ssh) and
// openssh (the OpenSSH client binary).
//
// Each method is one *Method in a registry (Lookup, Methods): its name,
// whether it ends in a shell that runs stage 1, how it takes a password,
// its default user, which options apply to it, how it names the context,
// how it starts, and how it explains what a refusing tool printed. A Spec
// is the plain data a method starts from; it crosses the wire when a
// context starts a child for another.
//
// Failure causes are sentinel errors (ErrPasswordIncorrect, ErrNotAllowed,
// ErrUnknownHostKey, ...) matched with errors.Is; Code and FromCode turn them
// into stable strings and back, so that a failure keeps its cause when it
// is reported by another context. Package actors routes the child once it
// has started; this package never sees a frame.
package connect
