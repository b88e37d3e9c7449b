package actors

import (
	"errors"
	"fmt"
	"io"
	"testing"
	"time"
)

// Each cause a route deletion can carry comes back as its sentinel, also
// from the wrapped errors streams close with; what has no code travels as
// none, and an unknown code (from a newer peer) gives no cause.
func TestChannelCauseCodes(t *testing.T) {
	for _, c := range channelCauses {
		if got := causeFromCode(causeCode(c.err)); got != c.err {
			t.Errorf("%q: round trip gives %v, want %v", c.code, got, c.err)
		}
	}
	for _, tc := range []struct {
		err  error
		want error
	}{
		{&heartbeatError{misses: 3, interval: time.Second}, ErrHeartbeat},
		{fmt.Errorf("reading: %w", io.ErrUnexpectedEOF), io.ErrUnexpectedEOF},
		{fmt.Errorf("stream: %w", io.EOF), io.EOF},
		{errors.New("killed"), nil},
		{nil, nil},
	} {
		if got := causeFromCode(causeCode(tc.err)); got != tc.want {
			t.Errorf("%v: cause %v, want %v", tc.err, got, tc.want)
		}
	}
	if causeFromCode("from-a-newer-version") != nil {
		t.Error("an unknown code gave a cause")
	}
}
