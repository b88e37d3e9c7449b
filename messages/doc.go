// Package messages defines mitogo's wire format: length-prefixed frames, the
// envelope header every frame carries, the handshake exchanged when a stream
// opens, and the registry that maps payload type names to Go types.
//
// A frame is a 4-byte big-endian body length followed by a body. The body of
// an ordinary frame is an envelope: a msgpack array holding the header,
// followed by at most one msgpack value, the payload. Routers decode only the
// header to forward a frame; the payload is decoded once, at its destination.
// The format is written down in spec.md so another implementation can speak it.
//
// Everything here is pure data and codec: no goroutines, no I/O beyond the
// io.Reader handed to ReadFrame.
package messages
